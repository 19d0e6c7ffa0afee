// GPU twin of nn/conv1d.hpp: the causal depthwise conv1d's output, dx, dw and dbias against the
// CPU twin, on widths 1, 4 (the Mamba-2 one) and 6 (two tap blocks of the dw reduction, one
// partial), sequences shorter than, equal to and longer than the kernel, batches of 1 and several,
// channel counts below, at and above one warp, and enough rows (> 256) for several row blocks.
// Tolerance kTwinTolerance: y and dx are sums of <= W + 1 terms; dw and dbias sums over <= 1300
// rows in another order (tests/support/cuda_twin.hpp).
#include <loglinear/cuda/nn/conv1d.hpp>
#include <loglinear/nn/conv1d.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <tuple>

using namespace loglinear;
using namespace loglinear::test;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::to_device;

TEST_CASE("cuda nn::conv1d: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  // (B, T, C, W)
  const auto [B, T, C, W] = GENERATE(table<Index, Index, Index, Index>({
      {1, 1, 1, 1}, {1, 1, 5, 4}, {2, 3, 7, 4}, {1, 9, 1, 4}, {3, 50, 33, 4}, {4, 130, 64, 4}, {2, 17, 45, 6},
      {1, 300, 3, 1}, {5, 260, 40, 4}}));
  CAPTURE(B, T, C, W);
  std::mt19937_64 rng(B * 1000003 + T * 1009 + C * 13 + W);
  Context ctx;
  const Index N = B * T;
  const RowMatrix<float> x = random_matrix(N, C, rng), w = random_matrix(C, W, rng, 0.5),
                         bias = random_matrix(1, C, rng), dy = random_matrix(N, C, rng);
  const DeviceMatrix xd = to_device(x), wd = to_device(w);
  DeviceMatrix y;
  cuda::nn::conv1d_forward(ctx, xd, B, wd, to_device(bias), y);
  check_twin("y", ctx, y, nn::conv1d_forward<float>(x, B, w, bias));

  // dw and dbias accumulate onto what is there; dx is written.
  RowMatrix<float> dw = random_matrix(C, W, rng), dbias = random_matrix(1, C, rng);
  DeviceMatrix dwd = to_device(dw), dbd = to_device(dbias), dx = to_device(random_matrix(N, C, rng));
  cuda::nn::conv1d_backward(ctx, xd, B, wd, to_device(dy), dwd, dbd, dx);
  const RowMatrix<float> dx_cpu = nn::conv1d_backward<float>(x, B, w, dy, dw, dbias);
  check_twin("dx", ctx, dx, dx_cpu);
  check_twin("dw", ctx, dwd, dw);
  check_twin("dbias", ctx, dbd, dbias);
}

TEST_CASE("cuda nn::conv1d: shape mismatches name the argument", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  const DeviceMatrix x(6, 3), w(3, 4), bias(1, 3);
  DeviceMatrix y;
  CHECK_THROWS_WITH(cuda::nn::conv1d_forward(ctx, x, 4, w, bias, y),
                    Catch::Matchers::ContainsSubstring("x: expected shape [B*T, C] with rows divisible by B = 4"));
  CHECK_THROWS_WITH(cuda::nn::conv1d_forward(ctx, x, 0, w, bias, y), Catch::Matchers::ContainsSubstring("x: expected"));
  CHECK_THROWS_WITH(cuda::nn::conv1d_forward(ctx, x, 2, DeviceMatrix(2, 4), bias, y),
                    Catch::Matchers::ContainsSubstring("w: expected shape [C, W] with C = 3"));
  CHECK_THROWS_WITH(cuda::nn::conv1d_forward(ctx, x, 2, DeviceMatrix(3, 0), bias, y),
                    Catch::Matchers::ContainsSubstring("w: expected"));
  CHECK_THROWS_WITH(cuda::nn::conv1d_forward(ctx, x, 2, w, DeviceMatrix(1, 4), y),
                    Catch::Matchers::ContainsSubstring("bias: expected shape [1, C] = [1, 3]"));
  DeviceMatrix dw(3, 4), db(1, 3), dx;
  CHECK_THROWS_WITH(cuda::nn::conv1d_backward(ctx, x, 2, w, DeviceMatrix(6, 4), dw, db, dx),
                    Catch::Matchers::ContainsSubstring("dy: expected the shape of x [6, 3]"));
  DeviceMatrix dw_bad(3, 5), db_bad(1, 2);
  const DeviceMatrix dy(6, 3);
  CHECK_THROWS_WITH(cuda::nn::conv1d_backward(ctx, x, 2, w, dy, dw_bad, db, dx),
                    Catch::Matchers::ContainsSubstring("dw: expected the shape of w [3, 4]"));
  CHECK_THROWS_WITH(cuda::nn::conv1d_backward(ctx, x, 2, w, dy, dw, db_bad, dx),
                    Catch::Matchers::ContainsSubstring("dbias: expected"));
}
