// Small log-linear Mamba-2 LM (reference/loglinear/nn/lm.hpp): the loss against central
// differences in double w.r.t. a sample of every parameter tensor; the pre-norm residual block
// (through a one-block LM) against central differences and, with both branches zeroed, as the
// identity; the label mask; a few AdamW steps lower the loss deterministically; errors; the same
// gradient check with Gated DeltaNet mixers (mixer_kind gdn).
#include <loglinear/train/adamw.hpp>
#include <loglinear/train/clip.hpp>
#include <loglinear/nn/lm.hpp>

#include "../support/gradcheck.hpp"
#include "../support/lm_configs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

namespace {
LmConfig tiny_lm() { return tiny_lm_config(7, 2); }
LmConfig one_block_lm() { return tiny_lm_config(12, 1); }
Param<double>& param(MambaLm<double>& lm, const std::string& name) {
  for (auto* p : lm.params())
    if (p->name == name) return *p;
  throw std::invalid_argument("no parameter named " + name);
}
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

// The residual block x += mixer(RMSNorm(x)); x += SwiGLU(RMSNorm(x)) lives inside
// MambaLm::forward/loss (nn/lm.cpp), not as a separate function, so it is tested through an LM
// with exactly one block. With every token id distinct, row tokens[n] of the embedding table IS
// the block's input x_n (the embedding is a plain copy, tests/nn/test_embedding.cpp), so the
// gradient w.r.t. the table is the gradient w.r.t. the block input; the block's own parameters are
// checked in the same model. Its components (RMSNorm, SwiGLU, the mixer) have their own checks in test_rmsnorm.cpp,
// test_swiglu.cpp and test_mamba2_mixer.cpp; what this adds is the residual wiring and the order
// of the two branches.
TEST_CASE("residual block: gradients w.r.t. its input and its parameters match central differences",
          "[nn][lm][block][fd]") {
  MambaLm<double> lm(one_block_lm(), 21);
  // O(1) random parameters (dt_bias ~ N(0,1)) so both branches carry a resolvable gradient; the
  // mixer's in_proj and conv_w get N(0,1) so that q = C and k = B are O(1) and the lambda path
  // (whose gradient scales with q.k) is not drowned by the D skip: at 0.3 its gradients were
  // ~1e-6, where eps 1e-5 differences resolve only ~1e-5 relative.
  std::mt19937_64 rng(22);
  std::normal_distribution<double> n01(0, 1);
  for (auto* p : lm.params()) {
    const bool big = p->name.find("dt_bias") != std::string::npos || p->name.find("in_proj") != std::string::npos ||
                     p->name.find("conv_w") != std::string::npos;
    for (Index i = 0; i < p->value.size(); ++i) p->value.data()[i] = big ? n01(rng) : p->value.data()[i] + 0.3 * n01(rng);
  }
  const Index B = 2, T = 5;
  std::vector<std::int32_t> tokens(std::size_t(B * T));
  for (std::size_t n = 0; n < tokens.size(); ++n) tokens[n] = std::int32_t(n);
  std::shuffle(tokens.begin(), tokens.end(), rng);  // distinct ids: table row tokens[n] = x_n
  std::vector<std::int32_t> targets(tokens.size());
  for (auto& t : targets) t = std::int32_t(rng() % 12);
  lm.zero_grad();
  lm.forward(tokens, targets, B);
  lm.backward();
  auto loss = [&] { return lm.forward(tokens, targets, B); };
  for (auto* p : lm.params()) {
    if (p->name == "norm_f" || p->name == "lm_head") continue;  // outside the block
    const Mat analytic = p->grad;
    CAPTURE(p->name);
    // eps 1e-5 and floor 1e-2 as the whole-LM check (tests/nn/test_lm.cpp): the cross-entropy is
    // O(2), so roundoff is ~1e-11 absolute while the O(eps^2) truncation stays ~1e-8 relative.
    // Every tensor here has at most kCheckAllUpTo elements, so each is checked in full.
    const auto r = gradcheck(p->name == "embedding" ? "dx (block input, via the table)" : p->name, p->value.data(),
                             analytic.data(), analytic.size(), loss, 1e-5, 48, 1, 1e-2, kCheckAllUpTo);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);  // the bound
  }
}

TEST_CASE("residual block: with out_proj = 0 and W_down = 0 the block is the identity", "[nn][lm][block][oracle]") {
  MambaLm<double> lm(one_block_lm(), 23);
  param(lm, "blocks.0.mixer.out_proj").value.setZero();
  param(lm, "blocks.0.mlp.W_down").value.setZero();
  const std::vector<std::int32_t> tokens = {3, 1, 4, 1, 5, 9};
  const Mat logits = lm.logits(tokens, 2);
  // Independent oracle: logits = RMSNorm(table[tokens]) * w_f lm_head^T, written from the
  // definition (eps 1e-5), as if the block were not there.
  const Mat& table = param(lm, "embedding").value;
  const Mat& w_f = param(lm, "norm_f").value;
  const Mat& head = param(lm, "lm_head").value;
  for (std::size_t n = 0; n < tokens.size(); ++n) {
    const Eigen::RowVectorXd x = table.row(tokens[n]);
    const Eigen::RowVectorXd xn = x / std::sqrt(x.squaredNorm() / double(x.size()) + 1e-5);
    const Eigen::RowVectorXd expected = xn.cwiseProduct(w_f) * head.transpose();
    CAPTURE(n);
    // 1e-12: the same O(1) sums in a different order, well above double rounding.
    CHECK((logits.row(Index(n)) - expected).cwiseAbs().maxCoeff() <= 1e-12);
  }
}

TEST_CASE("lm: with Gated DeltaNet mixers the loss gradient w.r.t. every parameter tensor matches central "
          "differences", "[nn][lm][gdn][fd]") {
  const Form form = GENERATE(Form::chunked, Form::recurrent);
  CAPTURE(form_name(form));
  LmConfig cfg = tiny_lm();
  cfg.mixer_kind = "gdn";
  cfg.mixer.form = form;
  MambaLm<double> lm(cfg, 5);
  // O(1) random parameters (dt_bias, in_proj, conv_w ~ N(0,1): q, k directions and beta O(1),
  // as the residual-block case) so that every path carries a resolvable gradient.
  std::mt19937_64 rng(6);
  std::normal_distribution<double> n01(0, 1);
  for (auto* p : lm.params()) {
    const bool big = p->name.find("dt_bias") != std::string::npos || p->name.find("in_proj") != std::string::npos ||
                     p->name.find("conv_w") != std::string::npos;
    for (Index i = 0; i < p->value.size(); ++i) p->value.data()[i] = big ? n01(rng) : p->value.data()[i] + 0.3 * n01(rng);
  }
  const Index B = 2, T = 7;  // not a power of two; the chunk of 2 leaves a partial last chunk
  const auto tokens = random_tokens(B * T, 7, 1);
  auto targets = random_tokens(B * T, 7, 2);
  targets[0] = targets[8] = -1;  // masked positions
  lm.zero_grad();
  lm.forward(tokens, targets, B);
  lm.backward();
  auto loss = [&] { return lm.forward(tokens, targets, B); };
  bool saw_mixer = false;
  for (auto* p : lm.params()) {
    saw_mixer |= p->name == "blocks.1.mixer.in_proj";
    const Mat analytic = p->grad;
    // Floor 1e-2 as the Mamba-2 LM's check above, 12 entries per tensor, the best of three steps
    // (a wrong backward is off at every step). Without the D skip, o of a head can be small at a
    // token (mean(o^2) ~ 5e-5 here), where the per-head RMSNorm (eps 1e-5) is strongly curved: the
    // error of block 0's norm1 and the embedding falls as eps^2 (4e-2, 4e-4, 4e-6 at eps 1e-4,
    // 1e-5, 1e-6), so the smaller steps are needed; the larger ones serve the flat tensors, whose
    // small gradients drown in roundoff (~1e-16 |loss| / eps) at eps 1e-7.
    GradCheck r;
    r.max_rel = 1e300;
    for (double eps : {1e-5, 1e-6, 1e-7}) {
      const auto re = gradcheck(p->name, p->value.data(), analytic.data(), analytic.size(), loss, eps, 12, 1, 1e-2);
      if (re.max_rel < r.max_rel) r = re;
    }
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
  CHECK(saw_mixer);
}

TEST_CASE("lm: mixer_kind picks the blocks' mixer, names the architecture, and is checked", "[nn][lm][gdn]") {
  LmConfig cfg = tiny_lm();
  cfg.mixer_kind = "gdn";
  MambaLm<double> gdn(cfg, 3);
  MambaLm<double> m2(tiny_lm(), 3);
  CHECK(gdn.architecture() == "gdn_lm lambda=mlp_softplus");
  CHECK(m2.architecture() == "mamba2_lm lambda=mlp_softplus");
  // Outside the mixers the two start from the same weights (each block's mixer gets the same seed).
  for (auto* p : m2.params()) {
    if (p->name.find(".mixer.") != std::string::npos) continue;
    CAPTURE(p->name);
    CHECK(param(gdn, p->name).value == p->value);
  }
  const auto tokens = random_tokens(10, 7, 3);
  gdn.logits(tokens, 2);
  CHECK(gdn.last_decay(1).rows() == 10);
  CHECK(gdn.last_lambda(0).cols() == 2 * 4);
  CHECK(gdn.gdn_mixer(0).last_beta().rows() == 10);
  CHECK_THROWS_AS(gdn.mixer(0), std::logic_error);
  CHECK_THROWS_AS(m2.gdn_mixer(0), std::logic_error);
  CHECK_THROWS_WITH(gdn.last_decay(2), ContainsSubstring("layer: expected in [0, 2), got 2"));
  cfg.mixer_kind = "delta";
  CHECK_THROWS_WITH(MambaLm<double>(cfg, 1), ContainsSubstring("mixer_kind: expected one of mamba2, gdn, got \"delta\""));
}
