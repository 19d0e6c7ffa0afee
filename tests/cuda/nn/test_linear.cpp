// GPU twin of nn/linear.hpp: forward with and without bias, dx written and accumulated, dW and db
// accumulated, on shapes that are not multiples of any tile (cuBLAS edge paths), against the CPU
// twin in float32 (tolerance: tests/support/cuda_twin.hpp).
#include <loglinear/cuda/nn/linear.hpp>
#include <loglinear/nn/linear.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <tuple>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Generators::table;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::to_device;

TEST_CASE("cuda nn::linear: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, in, out] = GENERATE(table<Index, Index, Index>({{1, 1, 1}, {7, 5, 3}, {130, 64, 33}, {515, 96, 260}}));
  std::mt19937_64 rng(N * 1000 + in * 10 + out);
  CAPTURE(N, in, out);
  Context ctx;
  const RowMatrix<float> x = random_matrix(N, in, rng), W = random_matrix(out, in, rng, 0.1),
                         b = random_matrix(1, out, rng), dy = random_matrix(N, out, rng);
  const DeviceMatrix xd = to_device(x), Wd = to_device(W), bd = to_device(b), dyd = to_device(dy);

  DeviceMatrix y;
  cuda::nn::linear_forward(ctx, xd, Wd, y);
  check_twin("y = x W^T", ctx, y, nn::linear_forward(x, W));
  cuda::nn::linear_forward(ctx, xd, Wd, bd, y);
  const RowMatrix<float> y_cpu = nn::linear_forward(x, W).rowwise() + b.row(0);
  check_twin("y = x W^T + b", ctx, y, y_cpu);

  // dW and db accumulate onto what is there; dx is written, then accumulated.
  RowMatrix<float> dW = random_matrix(out, in, rng), db = random_matrix(1, out, rng);
  DeviceMatrix dWd = to_device(dW), dbd = to_device(db), dx;
  cuda::nn::linear_backward(ctx, xd, Wd, dyd, dWd, dbd, dx);
  const RowMatrix<float> dx_cpu = nn::linear_backward(x, W, dy, dW);
  db += dy.colwise().sum();
  check_twin("dx = dy W", ctx, dx, dx_cpu);
  check_twin("dW += dy^T x", ctx, dWd, dW);
  check_twin("db += sum dy", ctx, dbd, db);
  cuda::nn::linear_backward(ctx, xd, Wd, dyd, dWd, dx, /*accumulate_dx=*/true);
  check_twin("dx += dy W", ctx, dx, RowMatrix<float>(2 * dx_cpu));
}

TEST_CASE("cuda nn::linear: shape mismatches name the argument", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  const DeviceMatrix x(4, 3), W(2, 5), b(1, 3);
  DeviceMatrix y;
  CHECK_THROWS_WITH(cuda::nn::linear_forward(ctx, x, W, y), Catch::Matchers::ContainsSubstring("W: expected"));
  const DeviceMatrix W2(2, 3);
  CHECK_THROWS_WITH(cuda::nn::linear_forward(ctx, x, W2, b, y), Catch::Matchers::ContainsSubstring("b: expected"));
  DeviceMatrix dW(2, 3), dx;
  const DeviceMatrix dy(4, 5);
  CHECK_THROWS_WITH(cuda::nn::linear_backward(ctx, x, W2, dy, dW, dx), Catch::Matchers::ContainsSubstring("dy: expected"));
}

TEST_CASE("cuda nn::linear: Matmul::tf32 runs the GEMMs in TF32, within TF32's bound of the float32 twin",
          "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  std::mt19937_64 rng(77);
  const Index N = 515, in = 512, out = 260;
  Context ctx;
  CHECK(ctx.matmul() == cuda::Matmul::fp32);
  ctx.set_matmul(cuda::Matmul::tf32);
  CHECK(ctx.matmul() == cuda::Matmul::tf32);
  cublasMath_t mode;
  REQUIRE(cublasGetMathMode(ctx.cublas(), &mode) == CUBLAS_STATUS_SUCCESS);
  CHECK(mode == CUBLAS_TF32_TENSOR_OP_MATH);
  const RowMatrix<float> x = random_matrix(N, in, rng), W = random_matrix(out, in, rng, 0.05),
                         dy = random_matrix(N, out, rng);
  const DeviceMatrix xd = to_device(x), Wd = to_device(W), dyd = to_device(dy);
  DeviceMatrix y, dx;
  // TF32 rounds each GEMM input to a 10-bit mantissa (unit roundoff 2^-11 = 4.9e-4): a product of two
  // rounded operands is off by up to ~1e-3 relative, and the random signs of a 512-term dot product
  // keep the normwise error of the result near that; 3e-3 is the bound issue 14 sets for TF32.
  cuda::nn::linear_forward(ctx, xd, Wd, y);
  const RowMatrix<float> y_cpu = nn::linear_forward(x, W);
  const Comparison cy = compare("y tf32", y.download(ctx.stream()).data(), y_cpu.data(), y_cpu.size());
  INFO(cy.report());
  CHECK(cy.max_rel <= 3e-3);
  // Not vacuous: the mode is in effect (a float32 GEMM agrees to ~1e-6, kTwinTolerance).
  CHECK(cy.max_rel > 3e-5);
  RowMatrix<float> dW = RowMatrix<float>::Zero(out, in);
  DeviceMatrix dWd = to_device(dW);
  cuda::nn::linear_backward(ctx, xd, Wd, dyd, dWd, dx);
  const RowMatrix<float> dx_cpu = nn::linear_backward(x, W, dy, dW);
  check_twin("dx = dy W (tf32)", ctx, dx, dx_cpu, 3e-3);
  check_twin("dW = dy^T x (tf32)", ctx, dWd, dW, 3e-3);
  // Back to float32: the twin's tolerance again.
  ctx.set_matmul(cuda::Matmul::fp32);
  cuda::nn::linear_forward(ctx, xd, Wd, y);
  check_twin("y fp32 after tf32", ctx, y, y_cpu);
  CHECK_THROWS_WITH(cuda::matmul_from_name("bf16"), Catch::Matchers::ContainsSubstring("matmul: expected fp32 or tf32"));
}
