// nn/l2norm (the Gated DeltaNet mixer's q and k, SPEC.md §6): dx against central differences in
// double (plain and per group), unit norm per group as an independent oracle, a zero row stays
// finite, float against double, and the error messages.
#include <loglinear/nn/l2norm.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

TEST_CASE("l2norm: dx matches central differences, per group too", "[nn][l2norm][fd]") {
  const Index groups = GENERATE(1, 3);
  const Index N = 5, d = 6;
  CAPTURE(groups);
  Mat x = random_matrix(N, d, 1), dy = random_matrix(N, d, 2);
  L2NormCache<double> cache;
  l2norm_forward(x, cache, groups);
  const Mat dx = l2norm_backward(dy, cache);
  auto loss = [&] {
    L2NormCache<double> c;
    return weighted_sum(l2norm_forward(x, c, groups), dy);
  };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
}

TEST_CASE("l2norm: each group of the output has unit norm; a zero row stays zero", "[nn][l2norm][oracle]") {
  Mat x = random_matrix(3, 8, 4, 5.0);
  x.row(1).setZero();
  L2NormCache<double> cache;
  const Mat y = l2norm_forward(x, cache, 2, 1e-300);  // eps ~ 0: the exact unit norm, zero row still 0
  for (Index n : {0, 2})
    for (Index gr = 0; gr < 2; ++gr) CHECK(std::abs(y.row(n).segment(gr * 4, 4).norm() - 1) <= 1e-15);
  CHECK(y.row(1).isZero(0));
  // The default eps (1e-6) keeps a zero row's output zero and its gradient finite (rstd = 1e3).
  L2NormCache<double> with_eps;
  CHECK(l2norm_forward(x, with_eps, 2).row(1).isZero(0));
  const Mat dx = l2norm_backward(Mat(random_matrix(3, 8, 5)), with_eps);
  CHECK(dx.allFinite());
  CHECK(dx.row(1).cwiseAbs().maxCoeff() <= 1e3 * 5);  // rstd times an O(1) dy
}

TEST_CASE("l2norm: float agrees with double", "[nn][l2norm][float]") {
  const Mat x = random_matrix(4, 6, 6), dy = random_matrix(4, 6, 7);
  L2NormCache<double> cd;
  L2NormCache<float> cf;
  const Mat yd = l2norm_forward(x, cd, 2);
  const RowMatrix<float> yf = l2norm_forward<float>(x.cast<float>(), cf, 2);
  CHECK((yf.cast<double>() - yd).cwiseAbs().maxCoeff() <= 1e-6);  // a few float roundings of O(1) values
  const Mat dxd = l2norm_backward(dy, cd);
  const RowMatrix<float> dxf = l2norm_backward<float>(dy.cast<float>(), cf);
  CHECK((dxf.cast<double>() - dxd).cwiseAbs().maxCoeff() <= 1e-5 * (1 + dxd.cwiseAbs().maxCoeff()));
}

TEST_CASE("l2norm: bad groups and shapes throw std::invalid_argument naming the argument", "[nn][l2norm][errors]") {
  L2NormCache<double> cache;
  CHECK_THROWS_WITH(l2norm_forward(Mat(Mat::Ones(2, 6)), cache, 4),
                    ContainsSubstring("groups: expected a divisor of d = 6, got 4"));
  l2norm_forward(Mat(Mat::Ones(2, 6)), cache, 2);
  CHECK_THROWS_WITH(l2norm_backward(Mat(Mat::Ones(3, 6)), cache), ContainsSubstring("dy: expected the forward's shape [2,6]"));
}
