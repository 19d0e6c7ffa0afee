// core/activations: SiLU and the exact GELU, each derivative against central differences in
// double, GELU's odd part as an independent oracle, and finite values in the tails.
#include <loglinear/core/activations.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>

using namespace loglinear;
using namespace loglinear::test;
using Mat = RowMatrix<double>;

TEST_CASE("silu: derivative matches central differences, finite for |x| = 1e3", "[nn][silu][fd]") {
  Mat x = random_matrix(3, 5, 9, 3.0);
  const Mat dy = random_matrix(3, 5, 10);
  const Mat dx = silu_backward(x, dy);
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), [&] { return weighted_sum(silu_forward(x), dy); }));
  CHECK(silu(-1e3) == 0.0);
  CHECK(silu(1e3) == 1e3);
  CHECK(std::isfinite(silu_grad(-1e3)));
}

TEST_CASE("gelu: derivative matches central differences from the tails through 0", "[nn][gelu][fd]") {
  // Scale 3 puts samples in both tails (GELU' -> 0 and -> 1) and near the minimum at x ~ -0.75.
  Mat x = random_matrix(4, 6, 7, 3.0);
  x(0, 0) = 0.0;  // GELU'(0) = 1/2 exactly
  const Mat dy = random_matrix(4, 6, 8);
  const Mat dx = dy.cwiseProduct(x.unaryExpr([](double v) { return gelu_grad(v); }));
  auto loss = [&] { return weighted_sum(x.unaryExpr([](double v) { return gelu(v); }), dy); };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK(gelu_grad(0.0) == 0.5);
}

TEST_CASE("gelu: gelu(x) - gelu(-x) = x and gelu(0) = 0 (x Phi(x) with Phi(-x) = 1 - Phi(x))",
          "[nn][gelu][oracle]") {
  for (double x : {-6.0, -1.5, -0.3, 0.0, 0.2, 1.0, 4.0}) {
    CAPTURE(x);
    // 4e-15 relative: a few roundings of O(|x|) values.
    CHECK(std::abs(gelu(x) - gelu(-x) - x) <= 4e-15 * std::max(1.0, std::abs(x)));
  }
  CHECK(gelu(0.0) == 0.0);
  CHECK(gelu(-40.0) == 0.0);  // Phi underflows to 0, not NaN
  CHECK(gelu(40.0) == 40.0);
}
