// Diagnostics (reference/loglinear/train/diagnostics.hpp): quantiles against hand-computed order
// statistics, per-head/per-level collection from known g and lam, the LM's mixers as the source,
// text and JSON output, errors.
#include <loglinear/nn/lm.hpp>
#include <loglinear/train/diagnostics.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

TEST_CASE("quantiles: linear interpolation between order statistics of 0..100", "[train][diagnostics]") {
  std::vector<double> xs;
  for (int i = 100; i >= 0; --i) xs.push_back(i);  // unsorted on purpose
  const Quantiles q = quantiles(xs);
  // Exact: p (n - 1) = p * 100 is an integer for every p here.
  CHECK(q.median == 50);
  CHECK(q.q05 == 5);
  CHECK(q.q25 == 25);
  CHECK(q.q75 == 75);
  CHECK(q.q95 == 95);
  CHECK(q.min == 0);
  CHECK(q.max == 100);
  CHECK(q.count == 101);
  CHECK(quantiles({1.0, 2.0}).median == 1.5);
  CHECK(quantiles({}).count == 0);
}

TEST_CASE("collect_diagnostics: exp(g) and lambda per head and level from known values",
          "[train][diagnostics]") {
  const Index N = 5, H = 2, L = 3;
  Mat g(N, H), lam(N, H * L);
  for (Index n = 0; n < N; ++n) {
    g(n, 0) = std::log(0.5 + 0.1 * double(n));  // a = 0.5 .. 0.9, median 0.7
    g(n, 1) = std::log(0.95);
    for (Index c = 0; c < H * L; ++c) lam(n, c) = double(c) + 0.01 * double(n);  // median c + 0.02
  }
  const Diagnostics d = collect_diagnostics<double>({g}, {lam}, L);
  REQUIRE(d.layers.size() == 1);
  REQUIRE(d.layers[0].size() == std::size_t(H));
  // 1e-15: exp(log(x)) rounds once or twice.
  CHECK(std::abs(d.layers[0][0].decay.median - 0.7) <= 1e-15);
  CHECK(std::abs(d.layers[0][1].decay.q05 - 0.95) <= 1e-15);
  for (Index h = 0; h < H; ++h)
    for (Index l = 0; l < L; ++l) CHECK(d.layers[0][h].lambda[l].median == double(h * L + l) + 0.02);
  const std::string json = d.to_json(-1);
  CHECK_THAT(json, ContainsSubstring("\"layers\":[{\"heads\":[{\"decay\":{"));
  CHECK_THAT(json, ContainsSubstring("\"median\":0.7"));
  CHECK_THAT(d.to_text(), ContainsSubstring("layer 0 head 1  exp(g): q05 0.9500"));
}

TEST_CASE("collect_diagnostics: reads the LM's mixers; mlp_softplus lambda starts at ~0.9992",
          "[train][diagnostics]") {
  nn::LmConfig c;
  c.vocab = 5;
  c.d_model = 4;
  c.mlp_hidden = 4;
  c.mixer.heads = 2;
  c.mixer.d_state = 2;
  c.mixer.levels = 4;
  c.mixer.lambda_hidden = 3;
  nn::MambaLm<double> lm(c, 1);
  lm.logits({0, 1, 2, 3, 4, 0, 1, 2}, 1);
  std::vector<Mat> g, lam;
  for (Index i = 0; i < lm.num_layers(); ++i) {
    g.push_back(lm.mixer(i).last_decay());
    lam.push_back(lm.mixer(i).last_lambda());
  }
  const Diagnostics d = collect_diagnostics<double>(g, lam, 4);
  REQUIRE(d.layers.size() == 2);
  // W2 = 0 and b2 = 0.54 give softplus(0.54) = 0.99917 for every token and level (SPEC.md §7.2).
  CHECK(std::abs(d.layers[1][0].lambda[3].median - std::log1p(std::exp(0.54))) <= 1e-12);
  CHECK(d.layers[0][1].decay.max < 1.0);
  CHECK_THROWS_WITH(lm.mixer(2), ContainsSubstring("layer: expected in [0, 2), got 2"));
}

TEST_CASE("collect_diagnostics: mismatched inputs throw std::invalid_argument", "[train][diagnostics][errors]") {
  CHECK_THROWS_WITH(collect_diagnostics<double>({Mat::Zero(2, 1)}, {}, 1), ContainsSubstring("lam: expected one matrix per layer (1), got 0"));
  CHECK_THROWS_WITH(collect_diagnostics<double>({Mat::Zero(2, 1)}, {Mat::Zero(2, 3)}, 2), ContainsSubstring("lam: expected shape [N, H*L] = [2,2] in layer 0, got [2,3]"));
  CHECK_THROWS_WITH(collect_diagnostics<double>({Mat::Zero(0, 1)}, {Mat::Zero(0, 1)}, 1), ContainsSubstring("g: expected at least one token in layer 0"));
}
