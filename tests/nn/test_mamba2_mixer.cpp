// Log-linear Mamba-2 mixer (reference/loglinear/nn/mamba2_mixer.hpp, SPEC.md §8): input and every
// parameter tensor against central differences in double, in all four lambda modes and with
// G > 1; the three operator forms give the same output; errors.
#include <loglinear/nn/mamba2_mixer.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <random>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

namespace {
Mamba2MixerConfig tiny(const std::string& mode, Index groups) {
  Mamba2MixerConfig c;
  c.d_model = 4;
  c.expand = 2;
  c.heads = 2;
  c.n_groups = groups;
  c.d_state = 3;
  c.levels = 4;  // num_levels(5) = 4... or fewer; extra levels get zero gradient
  c.lambda = mode;
  c.lambda_hidden = 5;
  c.chunk = 2;
  return c;
}
// Random, O(1)-sized parameters so that no path is silent (W2 = 0, D = 1 at init would hide some).
// dt_bias is reset to N(0, 1) so that dt = softplus(.) ~ 0.7: with the init's dt ~ 1e-3 the
// g and A_log paths carry gradients of ~1e-8, below what central differences of the loss resolve.
void randomise(Mamba2Mixer<double>& m, std::uint64_t seed) {
  std::uint64_t s = seed;
  for (auto* p : m.params()) {
    const Mat noise = random_matrix(p->value.rows(), p->value.cols(), ++s, 0.3);
    if (p->name == "dt_bias") p->value = noise / 0.3;
    else p->value += noise;
  }
}
}  // namespace

TEST_CASE("mamba2_mixer: du and every parameter gradient match central differences", "[nn][mamba2_mixer][fd]") {
  const std::string mode = GENERATE(as<std::string>{}, "fixed", "constant", "mlp_softplus", "mlp_softmax");
  const Index groups = GENERATE(1, 2);
  const Index B = 2, T = 5;
  CAPTURE(mode, groups, B, T);
  Mamba2Mixer<double> mixer(tiny(mode, groups), 3);
  randomise(mixer, 40);
  Mat u = random_matrix(B * T, 4, 1);
  const Mat w = random_matrix(B * T, 4, 2);
  mixer.forward(u, B);
  const Mat du = mixer.backward(w);
  auto loss = [&] { return mixer.forward(u, B).cwiseProduct(w).sum(); };
  // eps 1e-4: the loss is O(5) while lambda's gradients go down to ~5e-6, so eps 1e-6 leaves
  // ~5e-10 roundoff (1e-4 relative); at 1e-4 roundoff is ~5e-12 and the O(eps^2) truncation
  // stays below it (the worst error fell 20x from eps 1e-5 to 1e-4: roundoff, not a wrong
  // derivative). Entries are judged against a floor of 1e-2 of the tensor's largest gradient.
  // 1e-6 (the bound) then holds for every tensor.
  constexpr double kEps = 1e-4, kFloor = 1e-2;
  {
    const auto r = gradcheck("du", u.data(), du.data(), du.size(), loss, kEps, 48, 1, kFloor);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
  for (auto* p : mixer.params()) {
    const Mat analytic = p->grad;
    const auto r = gradcheck(p->name, p->value.data(), analytic.data(), analytic.size(), loss, kEps, 24, 1, kFloor);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("mamba2_mixer: naive, recurrent and chunked forms give the same output", "[nn][mamba2_mixer][cross]") {
  const Index B = 2, T = 7;
  Mat u = random_matrix(B * T, 4, 5);
  Mat ref;
  for (Form form : {Form::naive, Form::recurrent, Form::chunked}) {
    auto cfg = tiny("mlp_softplus", 1);
    cfg.form = form;
    Mamba2Mixer<double> mixer(cfg, 9);
    randomise(mixer, 50);
    const Mat out = mixer.forward(u, B);
    if (ref.size() == 0) ref = out;
    // 1e-12: the forms agree to ~1e-12 in double (attention tests); the rest is identical code.
    CHECK((out - ref).cwiseAbs().maxCoeff() <= 1e-12 * (1 + ref.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("mamba2_mixer: bad config and shapes throw std::invalid_argument naming the argument",
          "[nn][mamba2_mixer][errors]") {
  auto cfg = tiny("fixed", 1);
  cfg.n_groups = 3;
  CHECK_THROWS_WITH(Mamba2Mixer<double>(cfg, 1), ContainsSubstring("n_groups: expected a divisor of heads = 2, got 3"));
  cfg = tiny("fixed", 1);
  cfg.d_state = 0;
  CHECK_THROWS_WITH(Mamba2Mixer<double>(cfg, 1), ContainsSubstring("d_state: expected >= 1, got 0"));
  cfg = tiny("fixed", 1);
  cfg.heads = 3;
  cfg.n_groups = 1;
  CHECK_THROWS_WITH(Mamba2Mixer<double>(cfg, 1), ContainsSubstring("heads: expected a divisor of d_inner = 8, got 3"));
  Mamba2Mixer<double> mixer(tiny("fixed", 1), 1);
  CHECK_THROWS_WITH(mixer.forward(Mat::Zero(6, 5), 2), ContainsSubstring("u: expected shape [B*T, d_model] with d_model = 4"));
  CHECK_THROWS_WITH(mixer.forward(Mat::Zero(5, 4), 2), ContainsSubstring("rows divisible by B = 2"));
  CHECK_THROWS_WITH(mixer.forward(Mat::Zero(100, 4), 1), ContainsSubstring("levels: expected >= num_levels(T)"));
  mixer.forward(Mat::Zero(6, 4), 2);
  CHECK_THROWS_WITH(mixer.backward(Mat::Zero(5, 4)), ContainsSubstring("dout: expected the forward's shape [6,4]"));
}
