// nn/rmsnorm (SPEC.md §8): RMSNorm (plain and per group) and gated RMSNorm against central
// differences in double for every input and parameter, the RMS of the output as an independent
// oracle, float against double, and the error messages.
#include <loglinear/nn/rmsnorm.hpp>

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

TEST_CASE("rmsnorm: dx and dw match central differences, per group too", "[nn][rmsnorm][fd]") {
  const Index groups = GENERATE(1, 2);
  const Index N = 5, d = 6;
  CAPTURE(groups, N, d);
  Mat x = random_matrix(N, d, 1), w = random_matrix(1, d, 2), dy = random_matrix(N, d, 3);
  RmsNormCache<double> cache;
  rmsnorm_forward(x, w, cache, groups);
  Mat dw = Mat::Zero(1, d);
  const Mat dx = rmsnorm_backward(dy, w, cache, dw);
  auto loss = [&] {
    RmsNormCache<double> c;
    return weighted_sum(rmsnorm_forward(x, w, c, groups), dy);
  };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dw", w.data(), dw.data(), dw.size(), loss));
}

TEST_CASE("rmsnorm: each group of the output has unit RMS when w = 1", "[nn][rmsnorm][oracle]") {
  const Mat x = random_matrix(3, 8, 4, 5.0);
  RmsNormCache<double> cache;
  const Mat y = rmsnorm_forward(x, Mat(Mat::Ones(1, 8)), cache, 2, 0.0);
  for (Index n = 0; n < 3; ++n)
    for (Index gr = 0; gr < 2; ++gr)
      CHECK(std::abs(y.row(n).segment(gr * 4, 4).squaredNorm() / 4 - 1) <= 1e-14);  // a few roundings
}

TEST_CASE("gated_rmsnorm: dx, dz and dw match central differences", "[nn][rmsnorm][fd]") {
  const Index N = 4, d = 6, groups = GENERATE(1, 3);
  CAPTURE(groups);
  Mat x = random_matrix(N, d, 5), z = random_matrix(N, d, 6, 2.0), w = random_matrix(1, d, 7);
  const Mat dy = random_matrix(N, d, 8);
  GatedRmsNormCache<double> cache;
  gated_rmsnorm_forward(x, z, w, cache, groups);
  Mat dw = Mat::Zero(1, d), dx, dz;
  gated_rmsnorm_backward(dy, w, cache, dw, dx, dz);
  auto loss = [&] {
    GatedRmsNormCache<double> c;
    return weighted_sum(gated_rmsnorm_forward(x, z, w, c, groups), dy);
  };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dz", z.data(), dz.data(), dz.size(), loss));
  CHECK_FD(gradcheck("dw", w.data(), dw.data(), dw.size(), loss));
}

TEST_CASE("rmsnorm: float agrees with double", "[nn][rmsnorm][property]") {
  const Mat x = random_matrix(6, 4, 21), w = random_matrix(1, 4, 22);
  RmsNormCache<double> cd;
  RmsNormCache<float> cf;
  // 1e-5: float rounding of O(1) values through a handful of operations.
  CHECK((rmsnorm_forward<float>(x.cast<float>(), w.cast<float>(), cf).cast<double>() - rmsnorm_forward(x, w, cd))
            .cwiseAbs()
            .maxCoeff() <= 1e-5);
}

TEST_CASE("rmsnorm: bad shapes throw std::invalid_argument naming the argument", "[nn][rmsnorm][errors]") {
  const Mat x = Mat::Zero(4, 6);
  RmsNormCache<double> c;
  CHECK_THROWS_WITH(rmsnorm_forward(x, Mat(Mat::Ones(1, 5)), c), ContainsSubstring("w: expected shape [1, d] = [1,6], got [1,5]"));
  CHECK_THROWS_WITH(rmsnorm_forward(x, Mat(Mat::Ones(1, 6)), c, 4), ContainsSubstring("groups: expected a divisor of d = 6, got 4"));
  rmsnorm_forward(x, Mat(Mat::Ones(1, 6)), c);
  Mat dw = Mat::Zero(1, 6);
  CHECK_THROWS_WITH(rmsnorm_backward(Mat(Mat::Zero(3, 6)), Mat(Mat::Ones(1, 6)), c, dw), ContainsSubstring("dy: expected the forward's shape [4,6]"));
  GatedRmsNormCache<double> gc;
  CHECK_THROWS_WITH(gated_rmsnorm_forward(x, Mat(Mat::Zero(4, 5)), Mat(Mat::Ones(1, 6)), gc), ContainsSubstring("z: expected the shape of x [4,6]"));
}
