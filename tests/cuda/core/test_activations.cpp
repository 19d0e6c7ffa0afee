// GPU twin of core/activations.hpp: the SiLU layer (silu_forward / silu_backward) against the CPU
// twin's, and the GELU and softplus layers against the CPU's scalar gelu / gelu_grad and
// softplus / sigmoid applied elementwise (that is how the lambda MLP and the decays use them), on
// shapes from one element to odd sizes past one block, with entries up to |x| ~ 40 so that the
// stable branches (e^-|x| underflow, erf saturation) are exercised, plus the in-place forms and
// the raw-pointer forms. Tolerance kTwinTolerance: elementwise, the twins differ only by the libm
// ulps of expf / erff / log1pf (<= 2 ulp, ~2e-7 relative), far inside 1e-5.
#include <loglinear/core/activations.hpp>
#include <loglinear/cuda/core/activations.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <tuple>

using namespace loglinear;
using namespace loglinear::test;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::to_device;

namespace {

// Random N(0, 3^2) entries with a few large ones of both signs.
RowMatrix<float> activation_inputs(Index rows, Index cols, std::mt19937_64& rng) {
  RowMatrix<float> x = random_matrix(rows, cols, rng, 3.0);
  const float big[] = {40.f, -40.f, 17.f, -17.f, 0.f};
  for (Index i = 0; i < std::min<Index>(5, x.size()); ++i) x.data()[(i * 7919) % x.size()] = big[i];
  return x;
}

template <class F>
RowMatrix<float> map(const RowMatrix<float>& x, F f) {
  return x.unaryExpr([&](float v) { return f(v); });
}

}  // namespace

TEST_CASE("cuda activations: SiLU, GELU and softplus layers equal the CPU twins", "[cuda][gpu][core]") {
  REQUIRE_GPU();
  const auto [N, d] = GENERATE(table<Index, Index>({
      {1, 1}, {1, 33}, {17, 1}, {5, 7}, {300, 129}, {1031, 64}}));
  CAPTURE(N, d);
  std::mt19937_64 rng(N * 131 + d);
  Context ctx;
  const RowMatrix<float> x = activation_inputs(N, d, rng), dy = random_matrix(N, d, rng);
  const DeviceMatrix xd = to_device(x), dyd = to_device(dy);
  DeviceMatrix y, dx;

  cuda::silu_forward(ctx, xd, y);
  check_twin("silu y", ctx, y, silu_forward(x));
  cuda::silu_backward(ctx, xd, dyd, dx);
  check_twin("silu dx", ctx, dx, silu_backward(x, dy));

  cuda::gelu_forward(ctx, xd, y);
  check_twin("gelu y", ctx, y, map(x, [](float v) { return gelu(v); }));
  cuda::gelu_backward(ctx, xd, dyd, dx);
  check_twin("gelu dx", ctx, dx, RowMatrix<float>(dy.cwiseProduct(map(x, [](float v) { return gelu_grad(v); }))));

  cuda::softplus_forward(ctx, xd, y);
  check_twin("softplus y", ctx, y, map(x, [](float v) { return softplus(v); }));
  cuda::softplus_backward(ctx, xd, dyd, dx);
  check_twin("softplus dx", ctx, dx, RowMatrix<float>(dy.cwiseProduct(map(x, [](float v) { return sigmoid(v); }))));
}

TEST_CASE("cuda activations: in place and raw-pointer forms", "[cuda][gpu][core]") {
  REQUIRE_GPU();
  std::mt19937_64 rng(7);
  Context ctx;
  const RowMatrix<float> x = activation_inputs(37, 11, rng), dy = random_matrix(37, 11, rng);
  // y = x in place.
  DeviceMatrix inplace = to_device(x);
  cuda::silu_forward(ctx, inplace, inplace);
  check_twin("silu in place", ctx, inplace, silu_forward(x));
  // dx = dy in place.
  const DeviceMatrix xd = to_device(x);
  DeviceMatrix g = to_device(dy);
  cuda::silu_backward(ctx, xd, g, g);
  check_twin("silu dx in place", ctx, g, silu_backward(x, dy));
  // Raw forms on the second row block only (a slice): rows 5 .. 36.
  const Index off = 5 * 11, n = x.size() - off;
  DeviceMatrix out = to_device(RowMatrix<float>::Zero(37, 11));
  const DeviceMatrix dyd = to_device(dy);
  cuda::softplus_backward(ctx, xd.data() + off, dyd.data() + off, n, out.data() + off);
  RowMatrix<float> expect = RowMatrix<float>::Zero(37, 11);
  for (Index i = off; i < x.size(); ++i) expect.data()[i] = dy.data()[i] * sigmoid(x.data()[i]);
  check_twin("softplus dx on a slice", ctx, out, expect);
  cuda::gelu_forward(ctx, xd.data() + off, n, out.data() + off);
  for (Index i = off; i < x.size(); ++i) expect.data()[i] = gelu(x.data()[i]);
  check_twin("gelu y on a slice", ctx, out, expect);
}

TEST_CASE("cuda activations: shape mismatches name the argument", "[cuda][gpu][core]") {
  REQUIRE_GPU();
  Context ctx;
  const DeviceMatrix x(4, 3), dy(3, 4);
  DeviceMatrix dx;
  CHECK_THROWS_WITH(cuda::silu_backward(ctx, x, dy, dx), Catch::Matchers::ContainsSubstring("dy: expected the shape of x [4, 3]"));
  CHECK_THROWS_WITH(cuda::gelu_backward(ctx, x, dy, dx), Catch::Matchers::ContainsSubstring("dy: expected"));
  CHECK_THROWS_WITH(cuda::softplus_backward(ctx, x, dy, dx), Catch::Matchers::ContainsSubstring("dy: expected"));
  CHECK_THROWS_WITH(cuda::silu_forward(ctx, x.data(), -1, dx.data()), Catch::Matchers::ContainsSubstring("n: expected >= 0"));
}
