// Decay parameterisations (reference/loglinear/decay/, SPEC.md §14.6): every key's du and
// parameter gradients against central differences in double, the hgrn2 lower-bound table, the
// init facts (simple_decay a0 = p, gla 0.5, tnl and tnl_l rates, hgrn2 lb_l = l/L), independent
// LightNet oracle, g <= 0, float vs double, and every error message.
#include <loglinear/decay/decay.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <random>

using namespace loglinear;
using namespace loglinear::decay;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;


TEST_CASE("decay: every parameterisation's du and parameter gradients match central differences",
          "[decay][fd]") {
  const std::string key = GENERATE(from_range(decay_names()));
  const Index B = 2, T = 9, H = 3;
  const std::uint64_t seed = 7;
  CAPTURE(key, B, T, H, seed);
  DecayOptions opt;
  opt.heads = H;
  opt.seed = seed;
  opt.p = 0.9;
  auto dec = make_decay<double>(key, opt);
  REQUIRE(dec->name() == key);
  if (key == "hgrn2") {
    Mat lb(1, H);
    lb << 0.0, 0.3, 0.7;  // one head without a bound, two with
    dynamic_cast<Hgrn2Decay<double>&>(*dec).set_lower_bound(lb);
  }
  // Scale 2 puts u across the sigmoid's curved range, where a wrong derivative shows.
  Mat u = random_matrix(B * T, H, seed, 2.0);
  const Mat w = random_matrix(B * T, H, seed + 1);
  dec->forward(u, B);
  const Mat du = dec->backward(w);
  auto loss = [&] { return weighted_sum(dec->forward(u, B), w); };
  // 1e-6 (the bound): the loss's roundoff, ~1e-16 |loss| / eps ~ 1e-10 absolute, reaches
  // ~3e-7 relative on entries near the floor (SPEC.md §14.6's 1e-7 is for a single entry's loss).
  const auto r = gradcheck("du", u.data(), du.data(), du.size(), loss);
  INFO(r.report());
  CHECK(r.max_rel <= 1e-6);
  if (!dec->data_dependent()) CHECK(du.isZero(0));
  for (auto* p : dec->params()) {
    const Mat analytic = p->grad;
    const auto rp = gradcheck(p->name, p->value.data(), analytic.data(), analytic.size(), loss);
    INFO(rp.report());
    CHECK(rp.max_rel <= 1e-6);
  }
}

TEST_CASE("hgrn2: gradient w.r.t. the lower bound and the Gamma table match central differences",
          "[decay][hgrn2][fd]") {
  const Index B = 1, T = 7, H = 2, L = 4;
  DecayOptions opt;
  opt.heads = H;
  auto dec = make_decay<double>("hgrn2", opt);
  auto& hg = dynamic_cast<Hgrn2Decay<double>&>(*dec);
  Mat Gamma = random_matrix(L, H, 3, 0.5);
  const Index layer = 2;
  const Mat u = random_matrix(B * T, H, 4, 2.0);
  const Mat w = random_matrix(B * T, H, 5);
  auto loss = [&] {
    hg.set_lower_bound(hgrn2_lower_bounds(Gamma).row(layer));
    return weighted_sum(dec->forward(u, B), w);
  };
  loss();
  dec->backward(w);
  Mat dlb = Mat::Zero(L, H);
  dlb.row(layer) = hg.lower_bound_grad();
  Mat dGamma = Mat::Zero(L, H);
  hgrn2_lower_bounds_backward(Gamma, dlb, dGamma);
  // 1e-6: as above (roundoff of the summed loss); the softmax adds one more smooth stage.
  const auto r = gradcheck("Gamma", Gamma.data(), dGamma.data(), dGamma.size(), loss);
  INFO(r.report());
  CHECK(r.max_rel <= 1e-6);
}

TEST_CASE("hgrn2: lower bounds start at 0 and equal l/L for an all-ones Gamma", "[decay][hgrn2][init]") {
  const Index L = GENERATE(1, 2, 12);
  CAPTURE(L);
  const Mat lb = hgrn2_lower_bounds(Mat(Mat::Ones(L, 3)));
  for (Index l = 0; l < L; ++l)
    for (Index h = 0; h < 3; ++h) CHECK(std::abs(lb(l, h) - double(l) / double(L)) <= 1e-15);  // a sum of l terms
  CHECK((lb.row(0).array() == 0).all());
  // lb = 0 reduces hgrn2 to log sigmoid(u), so a0 = 0.5.
  auto dec = make_decay<double>("hgrn2", DecayOptions{});
  CHECK(std::abs(std::exp(dec->forward(Mat::Zero(1, 1), 1)(0, 0)) - 0.5) <= 1e-15);
}

TEST_CASE("simple_decay: a = p at u = 0", "[decay][simple_decay][init]") {
  const double p = GENERATE(0.8, 0.9, 0.95, 0.99);
  CAPTURE(p);
  DecayOptions opt;
  opt.heads = 2;
  opt.p = p;
  auto dec = make_decay<double>("simple_decay", opt);
  const Mat a = dec->forward(Mat::Zero(3, 2), 1).array().exp();
  // 1e-15: logit then log-sigmoid then exp, a few roundings of O(1) numbers.
  CHECK((a.array() - p).abs().maxCoeff() <= 1e-15);
}

TEST_CASE("gla: a = 0.5 at u = 0 and g stays finite for very negative u", "[decay][gla][init]") {
  auto dec = make_decay<double>("gla", DecayOptions{});
  CHECK(std::exp(dec->forward(Mat::Zero(1, 1), 1)(0, 0)) == 0.5);
  const Mat g = dec->forward(Mat::Constant(1, 1, -1e5), 1);
  CHECK(std::isfinite(g(0, 0)));
  CHECK(std::abs(g(0, 0) - (-1e5 / 16)) <= 1e-9);
}

TEST_CASE("tnl: H = 8 gives -2^-(h+1) at layer 0 and rates fall to ~0 at the top layer",
          "[decay][tnl][init]") {
  DecayOptions opt;
  opt.heads = 8;
  opt.num_layers = 12;
  auto dec = make_decay<double>("tnl", opt);
  const Mat g = dec->forward(Mat::Zero(2, 8), 1);
  for (Index h = 0; h < 8; ++h) {
    const double expect = -(1 + 1e-5) * std::ldexp(1.0, -int(h + 1));
    // 1e-14 relative: pow(128, h/7) rounds h/7, so 2^h is exact only up to a few ulps.
    CHECK(std::abs(g(1, h) - expect) <= 1e-14 * std::abs(expect));
  }
  opt.layer = 11;
  const Mat g_top = make_decay<double>("tnl", opt)->forward(Mat::Zero(1, 8), 1);
  CHECK((g_top.array() < 0).all());
  CHECK((g_top.array() > -1e-5).all());
}

TEST_CASE("tnl_l: starts at tnl's rates, keeps g <= 0 for any theta and accepts one head",
          "[decay][tnl_l][init]") {
  DecayOptions opt;
  opt.heads = 8;
  opt.num_layers = 12;
  for (Index layer : {Index(0), Index(5), Index(11)}) {
    CAPTURE(layer);
    opt.layer = layer;
    const Mat g_tnl = make_decay<double>("tnl", opt)->forward(Mat::Zero(1, 8), 1);
    const Mat g = make_decay<double>("tnl_l", opt)->forward(Mat::Zero(3, 8), 1);
    for (Index h = 0; h < 8; ++h)
      // 1e-12 relative: softplus(softplus^-1(y)) loses a few ulps to log/expm1 of small y.
      CHECK(std::abs(g(2, h) - g_tnl(0, h)) <= 1e-12 * std::abs(g_tnl(0, h)));
  }
  auto dec = make_decay<double>("tnl_l", opt);
  REQUIRE(dec->params().size() == 1);
  CHECK(dec->params()[0]->name == "theta");
  CHECK_FALSE(dec->data_dependent());
  // Any trained theta still gives a log-decay <= 0 (the source's unconstrained g = theta does not).
  dec->params()[0]->value << -800, -40, -1, 0, 1, 40, 800, 1e5;
  const Mat g = dec->forward(Mat::Zero(2, 8), 1);
  CHECK((g.array() <= 0).all());
  CHECK(g.allFinite());
  CHECK(g(0, 7) == -1e5);
  // One head, one layer: the 0/0 ratios of the rate formula are taken as 0, so g = -(1 + 1e-5) / 2.
  DecayOptions one;
  one.heads = 1;
  one.num_layers = 1;
  const Mat g1 = make_decay<double>("tnl_l", one)->forward(Mat::Zero(1, 1), 1);
  CHECK(std::abs(g1(0, 0) + (1 + 1e-5) / 2) <= 1e-15);
  one.prefix = "layers.3.";
  CHECK(make_decay<double>("tnl_l", one)->params()[0]->name == "layers.3.theta");
}

TEST_CASE("lightnet: g_t = log((1 + sum_{s<t} e^u_s) / (1 + sum_{s<=t} e^u_s)) per sequence",
          "[decay][lightnet][oracle]") {
  const Index B = 2, T = 13, H = 2;
  const Mat u = random_matrix(B * T, H, 11);
  auto dec = make_decay<double>("lightnet", DecayOptions{H});
  const Mat g = dec->forward(u, B);
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h) {
      double sum = 1;  // the leading logit 0
      for (Index t = 0; t < T; ++t) {
        const double before = sum;
        sum += std::exp(u(b * T + t, h));
        // 1e-12: a plain sum of T exponentials vs the log-space scan.
        CHECK(std::abs(g(b * T + t, h) - std::log(before / sum)) <= 1e-12);
      }
    }
}

TEST_CASE("decay: g <= 0 everywhere and float agrees with double", "[decay][property]") {
  const std::string key = GENERATE(from_range(decay_names()));
  CAPTURE(key);
  DecayOptions opt;
  opt.heads = 4;
  const Mat u = random_matrix(2 * 16, 4, 21, 3.0);
  const Mat g = make_decay<double>(key, opt)->forward(u, 2);
  CHECK((g.array() <= 0).all());
  auto decf = make_decay<float>(key, opt);
  const RowMatrix<float> gf = decf->forward(u.cast<float>(), 2);
  // 1e-5 absolute: float rounding of O(1) elementwise maps (lightnet accumulates over T = 16).
  CHECK((gf.cast<double>() - g).cwiseAbs().maxCoeff() <= 1e-5);
  const RowMatrix<float> duf = decf->backward(RowMatrix<float>::Ones(32, 4));
  CHECK(duf.allFinite());
}

TEST_CASE("decay: bad keys, options and shapes throw std::invalid_argument naming the argument",
          "[decay][errors]") {
  DecayOptions opt;
  opt.heads = 2;
  CHECK_THROWS_WITH(make_decay<double>("gru", opt), ContainsSubstring("decay: expected one of mamba2"));
  auto dec = make_decay<double>("mamba2", opt);
  CHECK_THROWS_WITH(dec->forward(Mat::Zero(4, 3), 1), ContainsSubstring("u: expected shape [B*T, H] with H = 2"));
  CHECK_THROWS_WITH(dec->forward(Mat::Zero(5, 2), 2), ContainsSubstring("rows divisible by B = 2"));
  dec->forward(Mat::Zero(4, 2), 2);
  CHECK_THROWS_WITH(dec->backward(Mat::Zero(3, 2)), ContainsSubstring("dg: expected shape [B*T, H]"));
  DecayOptions bad = opt;
  bad.heads = 0;
  CHECK_THROWS_WITH(make_decay<double>("gla", bad), ContainsSubstring("heads: expected >= 1, got 0"));
  bad = opt;
  bad.heads = 1;
  CHECK_THROWS_WITH(make_decay<double>("tnl", bad), ContainsSubstring("heads: tnl expects >= 2"));
  bad = opt;
  bad.num_layers = 1;
  CHECK_THROWS_WITH(make_decay<double>("tnl", bad), ContainsSubstring("num_layers: tnl expects >= 2"));
  bad = opt;
  bad.layer = 2;
  CHECK_THROWS_WITH(make_decay<double>("tnl", bad), ContainsSubstring("layer: expected in [0, 2), got 2"));
  CHECK_THROWS_WITH(make_decay<double>("tnl_l", bad), ContainsSubstring("layer: expected in [0, 2), got 2"));
  bad = opt;
  bad.p = 1.0;
  CHECK_THROWS_WITH(make_decay<double>("simple_decay", bad), ContainsSubstring("p: expected an initial decay rate in (0, 1)"));
  bad = opt;
  bad.tau = 0;
  CHECK_THROWS_WITH(make_decay<double>("gla", bad), ContainsSubstring("tau: expected > 0"));
  auto hg = make_decay<double>("hgrn2", opt);
  CHECK_THROWS_WITH(dynamic_cast<Hgrn2Decay<double>&>(*hg).set_lower_bound(Mat::Constant(1, 2, 1.0)),
                    ContainsSubstring("lb: expected every entry in [0, 1)"));
  CHECK_THROWS_WITH(dynamic_cast<Hgrn2Decay<double>&>(*hg).set_lower_bound(Mat::Zero(1, 3)),
                    ContainsSubstring("lb: expected shape"));
  CHECK_THROWS_WITH(hgrn2_lower_bounds(Mat(0, 2)), ContainsSubstring("Gamma: expected shape [L, H]"));
  Mat dG = Mat::Zero(2, 2);
  CHECK_THROWS_WITH(hgrn2_lower_bounds_backward(Mat(Mat::Ones(2, 2)), Mat(Mat::Zero(3, 2)), dG),
                    ContainsSubstring("dlb: expected the shape of Gamma"));
}
