// Log-linear Gated DeltaNet mixer (reference/loglinear/nn/gdn_mixer.hpp, SPEC.md §6): the input
// and every parameter tensor against central differences in double, in all four lambda modes and
// with G > 1, at a T that is not a power of two; the three operator forms give the same output;
// the parameter names and order; float against double; errors.
#include <loglinear/nn/gdn_mixer.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

namespace {
GdnMixerConfig tiny(const std::string& mode, Index groups) {
  GdnMixerConfig c;
  c.d_model = 4;
  c.expand = 2;  // d_inner = 8, V = 4
  c.heads = 2;
  c.n_groups = groups;
  c.d_state = 3;
  c.levels = 4;  // num_levels(5) = 4
  c.lambda = mode;
  c.lambda_hidden = 5;
  c.chunk = 2;  // several chunks, the last one partial at T = 5
  return c;
}
// O(1) random parameters so that no path is silent (W2 = 0 at init would hide the lambda MLP's
// first layer); dt_bias ~ N(0, 1) so that dt = softplus(.) ~ 0.7 (the init's dt ~ 1e-3 leaves the
// g and A_log paths with gradients below what central differences resolve). in_proj and conv_w get
// N(0, 1): then the conv outputs, and with them beta's and q, k's directions, are O(1).
void randomise(GdnMixer<double>& m, std::uint64_t seed) {
  std::uint64_t s = seed;
  for (auto* p : m.params()) {
    const Mat noise = random_matrix(p->value.rows(), p->value.cols(), ++s, 0.3);
    const bool big = p->name == "dt_bias" || p->name == "in_proj" || p->name == "conv_w";
    if (big) p->value = noise / 0.3;
    else p->value += noise;
  }
}
}  // namespace

TEST_CASE("gdn_mixer: du and every parameter gradient match central differences", "[nn][gdn_mixer][fd]") {
  const std::string mode = GENERATE(as<std::string>{}, "fixed", "constant", "mlp_softplus", "mlp_softmax");
  const Index groups = GENERATE(1, 2);
  const Form form = GENERATE(Form::chunked, Form::naive);
  const Index B = 2, T = 5;
  CAPTURE(mode, groups, form_name(form), B, T);
  GdnMixerConfig cfg = tiny(mode, groups);
  cfg.form = form;
  GdnMixer<double> mixer(cfg, 3);
  randomise(mixer, 40);
  Mat u = random_matrix(B * T, 4, 1);
  const Mat w = random_matrix(B * T, 4, 2);
  mixer.forward(u, B);
  const Mat du = mixer.backward(w);
  auto loss = [&] { return mixer.forward(u, B).cwiseProduct(w).sum(); };
  // eps 1e-5 and a floor of 1e-2 of the tensor's largest gradient. With in_proj ~ N(0, 1) the
  // loss is strongly curved: eps 1e-4 left O(eps^2) truncation of up to 4e-5 relative (du), eps
  // 1e-6 roundoff of up to 2e-6 on the small dt_bias and lambda gradients; at 1e-5 both stay
  // below 1e-6, the bound. Every tensor of at most kCheckAllUpTo entries is checked in full.
  constexpr double kEps = 1e-5, kFloor = 1e-2;
  const auto r = gradcheck("du", u.data(), du.data(), du.size(), loss, kEps, 48, 1, kFloor, kCheckAllUpTo);
  INFO(r.report());
  CHECK(r.max_rel <= 1e-6);
  for (auto* p : mixer.params()) {
    const Mat analytic = p->grad;
    const auto rp = gradcheck(p->name, p->value.data(), analytic.data(), analytic.size(), loss, kEps, 48, 1, kFloor,
                              kCheckAllUpTo);
    INFO(rp.report());
    CHECK(rp.max_rel <= 1e-6);
  }
}

TEST_CASE("gdn_mixer: naive, recurrent and chunked forms give the same output", "[nn][gdn_mixer][cross]") {
  const Index B = 2, T = 7;
  Mat u = random_matrix(B * T, 4, 5);
  Mat ref;
  for (Form form : {Form::naive, Form::recurrent, Form::chunked}) {
    auto cfg = tiny("mlp_softplus", 2);
    cfg.form = form;
    GdnMixer<double> mixer(cfg, 9);
    randomise(mixer, 50);
    const Mat out = mixer.forward(u, B);
    if (ref.size() == 0) ref = out;
    // 1e-12: the GDN forms agree to ~1e-14 in double (tests/attention/test_gdn*.cpp); the rest
    // is identical code.
    CHECK((out - ref).cwiseAbs().maxCoeff() <= 1e-12 * (1 + ref.cwiseAbs().maxCoeff()));
  }
}

TEST_CASE("gdn_mixer: parameters in the documented order, with their shapes and weight-decay flags",
          "[nn][gdn_mixer]") {
  GdnMixer<float> m(tiny("fixed", 1), 1, "blocks.0.mixer.");
  std::vector<std::string> names;
  for (auto* p : m.params()) names.push_back(p->name);
  const std::string pre = "blocks.0.mixer.";
  CHECK(names == std::vector<std::string>{pre + "in_proj", pre + "conv_w", pre + "dt_bias", pre + "A_log",
                                          pre + "norm_w", pre + "out_proj", pre + "lambda.Lp"});
  const auto p = m.params();
  // GK = 3, d_inner = 8, H = 2, L = 4: in_proj rows 2*3 + 2*8 + 2*2 + 2*4 = 34, conv channels 2*3 + 8 = 14.
  CHECK(p[0]->value.rows() == 34);
  CHECK(p[0]->value.cols() == 4);
  CHECK(p[1]->value.rows() == 14);
  CHECK(p[1]->value.cols() == 4);
  CHECK(p[4]->value.cols() == 8);
  CHECK(p[5]->value.rows() == 4);
  CHECK(p[5]->value.cols() == 8);
  CHECK(p[0]->weight_decay);
  CHECK_FALSE(p[2]->weight_decay);
  CHECK_FALSE(p[3]->weight_decay);
  CHECK_FALSE(p[4]->weight_decay);
  // A_log = ln(1..H) as the Mamba-2 mixer; beta in (0, 1) and g <= 0 after a forward.
  CHECK(p[3]->value(0, 0) == 0.0f);
  CHECK(std::abs(p[3]->value(0, 1) - std::log(2.0f)) <= 1e-7f);
  m.forward(RowMatrix<float>(random_matrix(6, 4, 3).cast<float>()), 2);
  CHECK((m.last_beta().array() > 0).all());
  CHECK((m.last_beta().array() < 1).all());
  CHECK((m.last_decay().array() <= 0).all());
  CHECK(m.last_lambda().cols() == 2 * 4);
}

TEST_CASE("gdn_mixer: float agrees with double", "[nn][gdn_mixer][float]") {
  const Index B = 2, T = 6;
  GdnMixer<double> md(tiny("mlp_softplus", 1), 4);
  randomise(md, 60);
  GdnMixer<float> mf(tiny("mlp_softplus", 1), 4);
  const auto pd = md.params();
  const auto pf = mf.params();
  for (size_t i = 0; i < pd.size(); ++i) pf[i]->value = pd[i]->value.cast<float>();
  const Mat u = random_matrix(B * T, 4, 7), w = random_matrix(B * T, 4, 8);
  const Mat od = md.forward(u, B);
  const RowMatrix<float> of = mf.forward(u.cast<float>(), B);
  // Float rounding of O(1) values through a few dozen operations.
  CHECK((of.cast<double>() - od).cwiseAbs().maxCoeff() <= 1e-4 * (1 + od.cwiseAbs().maxCoeff()));
  const Mat dud = md.backward(w);
  const RowMatrix<float> duf = mf.backward(w.cast<float>());
  CHECK((duf.cast<double>() - dud).cwiseAbs().maxCoeff() <= 1e-4 * (1 + dud.cwiseAbs().maxCoeff()));
}

TEST_CASE("gdn_mixer: bad config and shapes throw std::invalid_argument naming the argument",
          "[nn][gdn_mixer][errors]") {
  auto cfg = tiny("fixed", 1);
  cfg.n_groups = 3;
  CHECK_THROWS_WITH(GdnMixer<double>(cfg, 1), ContainsSubstring("n_groups: expected a divisor of heads = 2, got 3"));
  cfg = tiny("fixed", 1);
  cfg.d_state = 0;
  CHECK_THROWS_WITH(GdnMixer<double>(cfg, 1), ContainsSubstring("d_state: expected >= 1, got 0"));
  cfg = tiny("fixed", 1);
  cfg.lambda = "adaptive";
  CHECK_THROWS_WITH(GdnMixer<double>(cfg, 1), ContainsSubstring("lambda: expected one of"));
  GdnMixer<double> mixer(tiny("fixed", 1), 1);
  CHECK_THROWS_WITH(mixer.forward(Mat::Zero(6, 5), 2), ContainsSubstring("u: expected shape [B*T, d_model] with d_model = 4"));
  CHECK_THROWS_WITH(mixer.forward(Mat::Zero(5, 4), 2), ContainsSubstring("rows divisible by B = 2"));
  CHECK_THROWS_WITH(mixer.forward(Mat::Zero(100, 4), 1), ContainsSubstring("levels: expected >= num_levels(T)"));
  mixer.forward(Mat::Zero(6, 4), 2);
  CHECK_THROWS_WITH(mixer.backward(Mat::Zero(5, 4)), ContainsSubstring("dout: expected the forward's shape [6,4]"));
}
