// GPU twin of nn/swiglu.hpp: the SwiGLU MLP's output, dx (written and accumulated) and the three
// weight gradients (accumulated) against the CPU twin, on shapes that are not multiples of any
// GEMM tile, including 1 row, d = 1 and hidden = 1, and y computed in place of x.
// Tolerance kTwinTolerance: GEMMs over <= 256 terms in cuBLAS's order vs Eigen's, as linear's.
#include <loglinear/cuda/nn/swiglu.hpp>
#include <loglinear/nn/swiglu.hpp>

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

TEST_CASE("cuda nn::swiglu: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, d, hidden] = GENERATE(table<Index, Index, Index>({
      {1, 1, 1}, {1, 8, 3}, {9, 1, 5}, {7, 5, 1}, {130, 64, 171}, {257, 96, 256}}));
  CAPTURE(N, d, hidden);
  std::mt19937_64 rng(N * 1000 + d * 10 + hidden);
  Context ctx;
  const RowMatrix<float> x = random_matrix(N, d, rng), W_gate = random_matrix(hidden, d, rng, 0.3),
                         W_up = random_matrix(hidden, d, rng, 0.3), W_down = random_matrix(d, hidden, rng, 0.1),
                         dy = random_matrix(N, d, rng);
  const DeviceMatrix xd = to_device(x), Wgd = to_device(W_gate), Wud = to_device(W_up), Wdd = to_device(W_down),
                     dyd = to_device(dy);
  nn::SwiGluCache<float> cpu_cache;
  const RowMatrix<float> y_cpu = nn::swiglu_forward<float>(x, W_gate, W_up, W_down, cpu_cache);
  cuda::nn::SwiGluCache cache;
  DeviceMatrix y;
  cuda::nn::swiglu_forward(ctx, xd, Wgd, Wud, Wdd, cache, y);
  check_twin("y", ctx, y, y_cpu);
  check_twin("h", ctx, cache.h, cpu_cache.h);

  RowMatrix<float> dWg = random_matrix(hidden, d, rng), dWu = random_matrix(hidden, d, rng),
                   dWd = random_matrix(d, hidden, rng);
  DeviceMatrix dWgd = to_device(dWg), dWud = to_device(dWu), dWdd = to_device(dWd), dx;
  cuda::nn::swiglu_backward(ctx, dyd, Wgd, Wud, Wdd, cache, dWgd, dWud, dWdd, dx);
  const RowMatrix<float> dx_cpu = nn::swiglu_backward<float>(dy, W_gate, W_up, W_down, cpu_cache, dWg, dWu, dWd);
  check_twin("dx", ctx, dx, dx_cpu);
  check_twin("dW_gate", ctx, dWgd, dWg);
  check_twin("dW_up", ctx, dWud, dWu);
  check_twin("dW_down", ctx, dWdd, dWd);
  DeviceMatrix dWg2 = to_device(dWg), dWu2 = to_device(dWu), dWd2 = to_device(dWd);
  cuda::nn::swiglu_backward(ctx, dyd, Wgd, Wud, Wdd, cache, dWg2, dWu2, dWd2, dx, /*accumulate_dx=*/true);
  check_twin("dx += ...", ctx, dx, RowMatrix<float>(2 * dx_cpu));

  // In place: y written over x (the cache keeps its own copy of x).
  DeviceMatrix inplace = to_device(x);
  cuda::nn::SwiGluCache cache2;
  cuda::nn::swiglu_forward(ctx, inplace, Wgd, Wud, Wdd, cache2, inplace);
  check_twin("y in place of x", ctx, inplace, y_cpu);
  check_twin("cached x", ctx, cache2.x, x);
}

TEST_CASE("cuda nn::swiglu: shape mismatches name the argument", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  const DeviceMatrix x(4, 3), Wg(5, 3), Wu(5, 3), Wd(3, 5);
  cuda::nn::SwiGluCache cache;
  DeviceMatrix y;
  CHECK_THROWS_WITH(cuda::nn::swiglu_forward(ctx, x, DeviceMatrix(5, 2), Wu, Wd, cache, y),
                    Catch::Matchers::ContainsSubstring("W_gate: expected shape [hidden, d] with d = 3"));
  CHECK_THROWS_WITH(cuda::nn::swiglu_forward(ctx, x, Wg, DeviceMatrix(4, 3), Wd, cache, y),
                    Catch::Matchers::ContainsSubstring("W_up: expected shape [hidden, d] = [5, 3]"));
  CHECK_THROWS_WITH(cuda::nn::swiglu_forward(ctx, x, Wg, Wu, DeviceMatrix(5, 3), cache, y),
                    Catch::Matchers::ContainsSubstring("W_down: expected shape [d, hidden] = [3, 5]"));
  cuda::nn::swiglu_forward(ctx, x, Wg, Wu, Wd, cache, y);
  DeviceMatrix dWg(5, 3), dWu(5, 3), dWd(3, 5), dx;
  CHECK_THROWS_WITH(cuda::nn::swiglu_backward(ctx, DeviceMatrix(4, 2), Wg, Wu, Wd, cache, dWg, dWu, dWd, dx),
                    Catch::Matchers::ContainsSubstring("dy: expected the forward's shape [4, 3]"));
  const DeviceMatrix dy(4, 3);
  DeviceMatrix bad(3, 5);
  CHECK_THROWS_WITH(cuda::nn::swiglu_backward(ctx, dy, Wg, Wu, Wd, cache, bad, dWu, dWd, dx),
                    Catch::Matchers::ContainsSubstring("dW_gate: expected"));
  CHECK_THROWS_WITH(cuda::nn::swiglu_backward(ctx, dy, Wg, Wu, Wd, cache, dWg, dWu, dWg, dx),
                    Catch::Matchers::ContainsSubstring("dW_down: expected"));
  DeviceMatrix dx_bad(4, 2);
  CHECK_THROWS_WITH(cuda::nn::swiglu_backward(ctx, dy, Wg, Wu, Wd, cache, dWg, dWu, dWd, dx_bad, true),
                    Catch::Matchers::ContainsSubstring("dx: expected"));
}
