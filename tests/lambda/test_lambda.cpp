// lambda/: every mode's backward against central finite differences in double, the values at
// initialisation the sources start from, the factory's keys and errors.
#include <loglinear/lambda/lambda.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::lambda;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

namespace {
// Sum of w ⊙ y: a loss whose gradient w.r.t. y is w.
double weighted(const Mat& y, const Mat& w) { return y.cwiseProduct(w).sum(); }
}  // namespace

TEST_CASE("lambda: every mode's backward matches finite differences", "[lambda][fd]") {
  const std::string mode = GENERATE(as<std::string>{}, "fixed", "constant", "mlp_softplus",
                                   "mlp_softmax");
  CAPTURE(mode);
  std::mt19937_64 rng(3);
  auto lw = make_level_weights<double>(mode, {2, 5, 6, ""}, rng);
  // Move W2 and the rest away from their init so that every path carries gradient.
  for (auto* p : lw->params()) p->value += random_matrix(p->value.rows(), p->value.cols(), 11, 0.3);
  Mat dl = random_matrix(4, 10, 5);
  const Mat w = random_matrix(4, 10, 6);
  auto L = [&] { return weighted(lw->forward(dl), w); };
  lw->forward(dl);
  const Mat ddl = lw->backward(w);
  if (mode != "constant") {
    const auto r = gradcheck("d(dl)", dl.data(), ddl.data(), dl.size(), L);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  } else {
    CHECK(ddl.isZero(0));  // data-independent
  }
  for (auto* p : lw->params()) {
    const auto r = gradcheck(p->name, p->value.data(), p->grad.data(), p->value.size(), L);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("lambda: lambda at initialisation is what the sources start from", "[lambda]") {
  std::mt19937_64 rng(1);
  const Mat dl = random_matrix(3, 2 * 8, 9);
  auto sp = make_level_weights<double>("mlp_softplus", {2, 8, 64, ""}, rng);
  const Mat lam_sp = sp->forward(dl);
  CHECK((lam_sp.array() - std::log1p(std::exp(0.54))).abs().maxCoeff() < 1e-15);
  CHECK(std::abs(lam_sp(0, 0) - 0.9992) < 1e-4);
  auto sm = make_level_weights<double>("mlp_softmax", {2, 8, 64, ""}, rng);
  CHECK((sm->forward(dl).array() - 1.0 / 8).abs().maxCoeff() < 1e-15);
  auto c = make_level_weights<double>("constant", {2, 8, 64, ""}, rng);
  CHECK((c->forward(dl).array() - 1.0).abs().maxCoeff() < 1e-14);
  auto fx = make_level_weights<double>("fixed", {2, 8, 64, ""}, rng);
  const Mat lam_fx = fx->forward(dl);
  CHECK(std::abs(lam_fx(1, 3) - std::log1p(std::exp(dl(1, 3)))) < 1e-15);  // Lp = 1
  CHECK_THROWS_WITH(make_level_weights<double>("adaptive", {}, rng), ContainsSubstring("lambda: expected one of fixed"));
  CHECK(lambda_names() == std::vector<std::string>{"fixed", "constant", "mlp_softplus", "mlp_softmax"});
  CHECK(sp->name() == "mlp_softplus");
}

