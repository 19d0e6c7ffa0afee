// GPU twin of nn/rmsnorm.hpp: RMSNorm and the gated RMSNorm, output, dx (written and accumulated),
// dz and dw against the CPU twin, on widths below, at and above one warp, with 1, 2 and 4 groups
// (segments of 1, odd and multiple-of-32 lengths), including 1 row and 1 column.
// Tolerance kTwinTolerance: the per-segment sums (<= 512 terms) and the column sums of dw over
// <= 1000 rows differ from the CPU's only in order (tests/support/cuda_twin.hpp).
#include <loglinear/cuda/nn/rmsnorm.hpp>
#include <loglinear/nn/rmsnorm.hpp>

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

namespace {
// The scale of x. A segment of one feature is degenerate: xhat = +-1/sqrt(1 + eps/x^2), and dx is
// rstd dxhat (1 - xhat^2), all cancellation, ~eps/x^2 of its terms; at |x| ~ 2 that is ~20 ulp of
// 1, i.e. rounding noise on both sides. At |x| ~ 3e-3 (x^2 ~ eps) the difference 1 - xhat^2 ~ 1/2
// and the twins' agreement is again the usual few ulp.
double x_scale(Index d, Index groups) { return d / groups == 1 ? 3e-3 : 2.0; }
}  // namespace

TEST_CASE("cuda nn::rmsnorm: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, d, groups] = GENERATE(table<Index, Index, Index>({
      {1, 1, 1}, {7, 1, 1}, {1, 40, 2}, {3, 31, 1}, {257, 64, 2}, {1000, 100, 4}, {65, 512, 1}, {33, 96, 96}}));
  CAPTURE(N, d, groups);
  std::mt19937_64 rng(N * 7 + d * 3 + groups);
  Context ctx;
  const RowMatrix<float> x = random_matrix(N, d, rng, x_scale(d, groups)), w = random_matrix(1, d, rng),
                         dy = random_matrix(N, d, rng);
  nn::RmsNormCache<float> cpu_cache;
  const RowMatrix<float> y_cpu = nn::rmsnorm_forward<float>(x, w, cpu_cache, groups);
  cuda::nn::RmsNormCache cache;
  DeviceMatrix y;
  const DeviceMatrix wd = to_device(w);
  cuda::nn::rmsnorm_forward(ctx, to_device(x), wd, cache, y, groups);
  check_twin("y", ctx, y, y_cpu);
  check_twin("rstd", ctx, cache.rstd, cpu_cache.rstd);

  // dw accumulates onto what is there; dx is written, then accumulated.
  RowMatrix<float> dw = random_matrix(1, d, rng);
  DeviceMatrix dwd = to_device(dw), dx;
  const DeviceMatrix dyd = to_device(dy);
  cuda::nn::rmsnorm_backward(ctx, dyd, wd, cache, dwd, dx);
  const RowMatrix<float> dx_cpu = nn::rmsnorm_backward<float>(dy, w, cpu_cache, dw);
  // dx = rstd (dxhat - xhat mean(dxhat xhat)) cancels part of dxhat; with segments <= 512 the
  // error stays below 1e-5 normwise (as LayerNorm's, test_layernorm.cpp).
  check_twin("dx", ctx, dx, dx_cpu);
  check_twin("dw", ctx, dwd, dw);
  cuda::nn::rmsnorm_backward(ctx, dyd, wd, cache, dwd, dx, /*accumulate_dx=*/true);
  dw += dy.cwiseProduct(cpu_cache.xhat).colwise().sum();
  check_twin("dx += ...", ctx, dx, RowMatrix<float>(2 * dx_cpu));
  check_twin("dw twice", ctx, dwd, dw);
}

TEST_CASE("cuda nn::gated_rmsnorm: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, d, groups] = GENERATE(table<Index, Index, Index>({
      {1, 1, 1}, {7, 1, 1}, {1, 40, 2}, {3, 31, 1}, {257, 64, 2}, {1000, 100, 4}, {65, 512, 1}, {33, 96, 96}}));
  CAPTURE(N, d, groups);
  std::mt19937_64 rng(N * 11 + d * 5 + groups);
  Context ctx;
  const RowMatrix<float> x = random_matrix(N, d, rng, x_scale(d, groups)), z = random_matrix(N, d, rng, 2.0),
                         w = random_matrix(1, d, rng), dy = random_matrix(N, d, rng);
  nn::GatedRmsNormCache<float> cpu_cache;
  const RowMatrix<float> y_cpu = nn::gated_rmsnorm_forward<float>(x, z, w, cpu_cache, groups);
  cuda::nn::GatedRmsNormCache cache;
  DeviceMatrix y;
  const DeviceMatrix wd = to_device(w);
  {
    // The inputs go out of scope: the cache must hold copies.
    const DeviceMatrix xd = to_device(x), zd = to_device(z);
    cuda::nn::gated_rmsnorm_forward(ctx, xd, zd, wd, cache, y, groups);
    ctx.synchronize();
  }
  check_twin("y", ctx, y, y_cpu);
  RowMatrix<float> dw = random_matrix(1, d, rng), dx_cpu, dz_cpu;
  DeviceMatrix dwd = to_device(dw), dx, dz;
  cuda::nn::gated_rmsnorm_backward(ctx, to_device(dy), wd, cache, dwd, dx, dz);
  nn::gated_rmsnorm_backward<float>(dy, w, cpu_cache, dw, dx_cpu, dz_cpu);
  check_twin("dx", ctx, dx, dx_cpu);
  check_twin("dz", ctx, dz, dz_cpu);
  check_twin("dw", ctx, dwd, dw);
}

TEST_CASE("cuda nn::rmsnorm: shape mismatches name the argument", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  cuda::nn::RmsNormCache cache;
  DeviceMatrix y;
  const DeviceMatrix x(2, 6), w(1, 6);
  CHECK_THROWS_WITH(cuda::nn::rmsnorm_forward(ctx, x, DeviceMatrix(1, 5), cache, y),
                    Catch::Matchers::ContainsSubstring("w: expected [1, 6]"));
  CHECK_THROWS_WITH(cuda::nn::rmsnorm_forward(ctx, x, w, cache, y, 4),
                    Catch::Matchers::ContainsSubstring("groups: expected a divisor of d = 6"));
  CHECK_THROWS_WITH(cuda::nn::rmsnorm_forward(ctx, x, w, cache, y, 0), Catch::Matchers::ContainsSubstring("groups:"));
  cuda::nn::rmsnorm_forward(ctx, x, w, cache, y, 3);
  DeviceMatrix dw(1, 6), dx;
  CHECK_THROWS_WITH(cuda::nn::rmsnorm_backward(ctx, DeviceMatrix(3, 6), w, cache, dw, dx),
                    Catch::Matchers::ContainsSubstring("dy: expected the forward's shape [2, 6]"));
  DeviceMatrix dw_bad(1, 5);
  CHECK_THROWS_WITH(cuda::nn::rmsnorm_backward(ctx, DeviceMatrix(2, 6), w, cache, dw_bad, dx),
                    Catch::Matchers::ContainsSubstring("dw: expected [1, 6]"));
  DeviceMatrix dx_bad(2, 5);
  CHECK_THROWS_WITH(cuda::nn::rmsnorm_backward(ctx, DeviceMatrix(2, 6), w, cache, dw, dx_bad, true),
                    Catch::Matchers::ContainsSubstring("dx: expected"));

  cuda::nn::GatedRmsNormCache gcache;
  CHECK_THROWS_WITH(cuda::nn::gated_rmsnorm_forward(ctx, x, DeviceMatrix(2, 5), w, gcache, y),
                    Catch::Matchers::ContainsSubstring("z: expected the shape of x [2, 6]"));
  cuda::nn::gated_rmsnorm_forward(ctx, x, x, w, gcache, y, 2);
  DeviceMatrix dz;
  CHECK_THROWS_WITH(cuda::nn::gated_rmsnorm_backward(ctx, DeviceMatrix(2, 3), w, gcache, dw, dx, dz),
                    Catch::Matchers::ContainsSubstring("dy: expected the forward's shape [2, 6]"));
}
