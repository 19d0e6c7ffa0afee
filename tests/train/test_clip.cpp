// train/clip (SPEC.md §9): global-norm gradient clipping, torch's rule, against the global norm
// written in the test.
#include <loglinear/train/clip.hpp>

#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <vector>

using namespace loglinear;
using namespace loglinear::train;
using loglinear::test::random_matrix;
using Mat = RowMatrix<double>;

namespace {
double global_norm(const std::vector<Param<double>*>& params) {
  double sq = 0;
  for (auto* p : params)
    for (Index i = 0; i < p->grad.size(); ++i) sq += p->grad.data()[i] * p->grad.data()[i];
  return std::sqrt(sq);
}
}  // namespace

TEST_CASE("clip_grad_norm: above max_norm the global norm becomes max_norm, directions kept",
          "[optim][clip][property]") {
  const double max_norm = 1.0;
  Param<double> a("a", Mat::Zero(3, 4)), b("b", Mat::Zero(1, 5));
  a.grad = random_matrix(3, 4, 5, 2.0);
  b.grad = random_matrix(1, 5, 6, 2.0);
  const Mat a0 = a.grad, b0 = b.grad;
  const std::vector<Param<double>*> params = {&a, &b};
  const double norm0 = global_norm(params);
  REQUIRE(norm0 > 2 * max_norm);
  CHECK(std::abs(clip_grad_norm(params, max_norm) - norm0) <= 1e-14 * norm0);  // returns the norm before
  // torch's rule: scale = max_norm / (norm + 1e-6), so the new norm is max_norm * norm / (norm + 1e-6),
  // short of max_norm by max_norm * 1e-6 / norm; 1e-6 relative covers that and rounding.
  CHECK(std::abs(global_norm(params) - max_norm) <= 1e-6 * max_norm);
  const double scale = a.grad(0, 0) / a0(0, 0);
  CHECK(std::abs(scale - max_norm / (norm0 + 1e-6)) <= 1e-15);
  // One common factor for every element of every tensor (1e-15: one rounding each).
  CHECK((a.grad - a0 * scale).cwiseAbs().maxCoeff() <= 1e-15);
  CHECK((b.grad - b0 * scale).cwiseAbs().maxCoeff() <= 1e-15);
}

TEST_CASE("clip_grad_norm: at or below max_norm the gradients are untouched bit for bit", "[optim][clip][property]") {
  Param<double> a("a", Mat::Zero(2, 3)), b("b", Mat::Zero(1, 2));
  a.grad = random_matrix(2, 3, 7, 0.1);
  b.grad = random_matrix(1, 2, 8, 0.1);
  const Mat a0 = a.grad, b0 = b.grad;
  const std::vector<Param<double>*> params = {&a, &b};
  const double norm0 = global_norm(params);
  REQUIRE(norm0 < 1.0);
  CHECK(std::abs(clip_grad_norm(params, 1.0) - norm0) <= 1e-15);
  CHECK(a.grad == a0);
  CHECK(b.grad == b0);
  CHECK(std::abs(clip_grad_norm(params, norm0) - norm0) <= 1e-15);  // exactly at the bound: not clipped
  CHECK(a.grad == a0);
  CHECK(b.grad == b0);
}
