// Small log-linear Mamba-2 LM (reference/loglinear/nn/lm.hpp): the loss against central
// differences in double w.r.t. a sample of every parameter tensor; the label mask; a few AdamW
// steps lower the loss deterministically; errors.
#include <loglinear/train/adamw.hpp>
#include <loglinear/train/clip.hpp>
#include <loglinear/nn/lm.hpp>

#include "../support/gradcheck.hpp"
#include "../support/lm_configs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <random>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

namespace {
LmConfig tiny_lm() { return tiny_lm_config(7, 2); }
std::vector<std::int32_t> random_tokens(Index n, Index vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> t(n);
  for (auto& x : t) x = std::int32_t(rng() % std::uint64_t(vocab));
  return t;
}
}  // namespace

TEST_CASE("lm: loss gradient w.r.t. every parameter tensor matches central differences", "[nn][lm][fd]") {
  MambaLm<double> lm(tiny_lm(), 5);
  // O(1) random parameters (dt_bias ~ N(0,1)) so every path carries a resolvable gradient.
  std::mt19937_64 rng(6);
  std::normal_distribution<double> n01(0, 1);
  for (auto* p : lm.params())
    for (Index i = 0; i < p->value.size(); ++i)
      p->value.data()[i] = p->name.find("dt_bias") != std::string::npos ? n01(rng) : p->value.data()[i] + 0.3 * n01(rng);
  const Index B = 2, T = 5;
  const auto tokens = random_tokens(B * T, 7, 1);
  auto targets = random_tokens(B * T, 7, 2);
  targets[0] = targets[6] = -1;  // masked positions
  lm.zero_grad();
  lm.forward(tokens, targets, B);
  lm.backward();
  auto loss = [&] { return lm.forward(tokens, targets, B); };
  for (auto* p : lm.params()) {
    const Mat analytic = p->grad;
    // eps 1e-5: the cross-entropy loss is O(2), so roundoff is ~1e-11 absolute while the O(eps^2)
    // truncation on the curved CE stays ~1e-8 relative (eps 1e-4 reached 6e-6); floor 1e-2 of the
    // tensor's largest gradient for entries that are ~0. 1e-6 is the bound.
    const auto r = gradcheck(p->name, p->value.data(), analytic.data(), analytic.size(), loss, 1e-5, 12, 1, 1e-2);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("lm: masked positions do not change the loss", "[nn][lm][property]") {
  MambaLm<double> lm(tiny_lm(), 5);
  const auto tokens = random_tokens(6, 7, 3);
  auto targets = random_tokens(6, 7, 4);
  targets[2] = -1;
  const double a = lm.forward(tokens, targets, 1);
  targets[3] = -1;
  const double b = lm.forward(tokens, targets, 1);
  CHECK(a != b);  // masking a scored position changes the mean
  targets[2] = -1;
  CHECK(lm.forward(tokens, targets, 1) == b);
}

TEST_CASE("lm: 30 AdamW steps on a fixed batch lower the loss, bit-identically per seed", "[nn][lm][train]") {
  auto run = [] {
    MambaLm<double> lm(tiny_lm(), 11);
    train::AdamW<double> opt(lm.params(), 0.9, 0.999, 1e-8, 0.1);
    // Next-token prediction of a periodic sequence: learnable from the last token alone.
    std::vector<std::int32_t> tokens(16), targets(16);
    for (Index t = 0; t < 16; ++t) tokens[t] = std::int32_t(t % 5), targets[t] = std::int32_t((t + 1) % 5);
    std::vector<double> losses;
    for (int step = 0; step < 30; ++step) {
      lm.zero_grad();
      losses.push_back(lm.forward(tokens, targets, 2));
      lm.backward();
      train::clip_grad_norm(lm.params(), 1.0);
      opt.step(3e-2);
    }
    return losses;
  };
  const auto a = run(), b = run();
  CAPTURE(a.front(), a.back());
  // ln 7 = 1.95 at init; 30 steps of lr 3e-2 bring it well under half (a stated, loose margin).
  CHECK(a.back() < 0.5 * a.front());
  CHECK(a == b);
}

TEST_CASE("lm: bad config, tokens and targets throw std::invalid_argument", "[nn][lm][errors]") {
  auto c = tiny_lm();
  c.vocab = 1;
  CHECK_THROWS_WITH(MambaLm<double>(c, 1), ContainsSubstring("vocab: expected >= 2, got 1"));
  c = tiny_lm();
  c.mlp_hidden = 0;
  CHECK_THROWS_WITH(MambaLm<double>(c, 1), ContainsSubstring("mlp_hidden: expected >= 1, got 0"));
  MambaLm<double> lm(tiny_lm(), 1);
  CHECK_THROWS_WITH(lm.logits({1, 2, 3}, 2), ContainsSubstring("tokens: expected B*T ids with B = 2"));
  CHECK_THROWS_WITH(lm.logits({1, 9}, 1), ContainsSubstring("tokens: expected ids in [0, 7), got 9 at 1"));
  CHECK_THROWS_WITH(lm.forward({1, 2}, {1}, 1), ContainsSubstring("targets: expected 2 labels"));
  CHECK_THROWS_WITH(lm.forward({1, 2}, {1, -2}, 1), ContainsSubstring("targets: expected -1 or ids in [0, 7), got -2 at 1"));
}
