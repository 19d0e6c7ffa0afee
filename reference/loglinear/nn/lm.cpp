// The small LM (lm.hpp), forward then backward; each backward block names the forward line.
#include <loglinear/core/init.hpp>
#include <loglinear/nn/cross_entropy.hpp>
#include <loglinear/nn/linear.hpp>
#include <loglinear/nn/embedding.hpp>
#include <loglinear/nn/lm.hpp>

#include <random>
#include <stdexcept>
#include <utility>

namespace loglinear::nn {
namespace {
enum Top { embedding, norm_f, lm_head };
enum BlockParam { norm1, norm2, W_gate, W_up, W_down };

Mamba2MixerConfig with_width(Mamba2MixerConfig m, Index d) {
  m.d_model = d;
  return m;
}
}  // namespace

template <class Scalar>
struct MambaLm<Scalar>::Block {
  std::vector<Param<Scalar>> p;
  // Exactly one of the two, as LmConfig::mixer_kind says.
  std::unique_ptr<Mamba2Mixer<Scalar>> mamba2;
  std::unique_ptr<GdnMixer<Scalar>> gdn;
  // Cache: the block input, its two normed copies and the mid-block residual.
  RmsNormCache<Scalar> n1, n2;
  SwiGluCache<Scalar> mlp;
  Block(const LmConfig& c, std::uint64_t seed, const std::string& pre) {
    if (c.mixer_kind == "gdn") gdn = std::make_unique<GdnMixer<Scalar>>(with_width(c.mixer, c.d_model), seed, pre + "mixer.");
    else mamba2 = std::make_unique<Mamba2Mixer<Scalar>>(with_width(c.mixer, c.d_model), seed, pre + "mixer.");
  }
  std::vector<Param<Scalar>*> mixer_params() { return gdn ? gdn->params() : mamba2->params(); }
  RowMatrix<Scalar> mixer_forward(const RowMatrix<Scalar>& u, Index B) {
    return gdn ? gdn->forward(u, B) : mamba2->forward(u, B);
  }
  RowMatrix<Scalar> mixer_backward(const RowMatrix<Scalar>& dout) {
    return gdn ? gdn->backward(dout) : mamba2->backward(dout);
  }
};

template <class Scalar>
MambaLm<Scalar>::MambaLm(const LmConfig& cfg, std::uint64_t seed) : cfg_(cfg) {
  if (cfg.mixer_kind != "mamba2" && cfg.mixer_kind != "gdn")
    throw std::invalid_argument("mixer_kind: expected one of mamba2, gdn, got \"" + cfg.mixer_kind + "\"");
  if (cfg.vocab < 2) throw std::invalid_argument("vocab: expected >= 2, got " + std::to_string(cfg.vocab));
  for (auto [name, v] : {std::pair<const char*, Index>{"d_model", cfg.d_model}, {"layers", cfg.layers},
                         {"mlp_hidden", cfg.mlp_hidden}})
    if (v < 1) throw std::invalid_argument(std::string(name) + ": expected >= 1, got " + std::to_string(v));
  using M = RowMatrix<Scalar>;
  const Index d = cfg.d_model, hid = cfg.mlp_hidden;
  std::mt19937_64 rng(seed);
  top_.emplace_back("embedding", init_normal<Scalar>(cfg.vocab, d, 0.02, rng));
  top_.emplace_back("norm_f", M::Ones(1, d), false);
  top_.emplace_back("lm_head", init_normal<Scalar>(cfg.vocab, d, 0.02, rng));
  for (Index i = 0; i < cfg.layers; ++i) {
    const std::string pre = "blocks." + std::to_string(i) + ".";
    auto b = std::make_unique<Block>(cfg, rng(), pre);
    b->p.emplace_back(pre + "norm1", M::Ones(1, d), false);
    b->p.emplace_back(pre + "norm2", M::Ones(1, d), false);
    b->p.emplace_back(pre + "mlp.W_gate", init_normal<Scalar>(hid, d, 0.02, rng));
    b->p.emplace_back(pre + "mlp.W_up", init_normal<Scalar>(hid, d, 0.02, rng));
    b->p.emplace_back(pre + "mlp.W_down", init_normal<Scalar>(d, hid, 0.02, rng));
    blocks_.push_back(std::move(b));
  }
}

template <class Scalar>
MambaLm<Scalar>::~MambaLm() = default;

template <class Scalar>
std::vector<Param<Scalar>*> MambaLm<Scalar>::params() {
  std::vector<Param<Scalar>*> out;
  for (auto& p : top_) out.push_back(&p);
  for (auto& b : blocks_) {
    for (auto& p : b->p) out.push_back(&p);
    for (auto* p : b->mixer_params()) out.push_back(p);
  }
  return out;
}

template <class Scalar>
const typename MambaLm<Scalar>::Block& MambaLm<Scalar>::block(Index i) const {
  if (i < 0 || i >= num_layers())
    throw std::invalid_argument("layer: expected in [0, " + std::to_string(num_layers()) + "), got " + std::to_string(i));
  return *blocks_[std::size_t(i)];
}

template <class Scalar>
const Mamba2Mixer<Scalar>& MambaLm<Scalar>::mixer(Index i) const {
  const Block& b = block(i);
  if (!b.mamba2)
    throw std::logic_error("MambaLm::mixer: the blocks have Gated DeltaNet mixers (mixer_kind gdn); use gdn_mixer");
  return *b.mamba2;
}

template <class Scalar>
const GdnMixer<Scalar>& MambaLm<Scalar>::gdn_mixer(Index i) const {
  const Block& b = block(i);
  if (!b.gdn)
    throw std::logic_error("MambaLm::gdn_mixer: the blocks have Mamba-2 mixers (mixer_kind mamba2); use mixer");
  return *b.gdn;
}

template <class Scalar>
const RowMatrix<Scalar>& MambaLm<Scalar>::last_decay(Index i) const {
  const Block& b = block(i);
  return b.gdn ? b.gdn->last_decay() : b.mamba2->last_decay();
}

template <class Scalar>
const RowMatrix<Scalar>& MambaLm<Scalar>::last_lambda(Index i) const {
  const Block& b = block(i);
  return b.gdn ? b.gdn->last_lambda() : b.mamba2->last_lambda();
}

template <class Scalar>
Mamba2Mixer<Scalar>& MambaLm<Scalar>::mixer(Index i) {
  return const_cast<Mamba2Mixer<Scalar>&>(std::as_const(*this).mixer(i));
}

template <class Scalar>
void MambaLm<Scalar>::zero_grad() {
  for (auto* p : params()) p->grad.setZero();
}

template <class Scalar>
RowMatrix<Scalar> MambaLm<Scalar>::logits(const std::vector<std::int32_t>& tokens, Index B) {
  if (B < 1 || tokens.empty() || Index(tokens.size()) % B != 0)
    throw std::invalid_argument("tokens: expected B*T ids with B = " + std::to_string(B) + " and T >= 1, got " +
                                std::to_string(tokens.size()));
  RowMatrix<Scalar> x = embedding_forward<Scalar>(tokens, top_[embedding].value);
  tokens_ = tokens;
  // Pre-norm residual blocks: x += mixer(RMSNorm(x)); x += SwiGLU(RMSNorm(x)).
  for (auto& b : blocks_) {
    x += b->mixer_forward(rmsnorm_forward<Scalar>(x, b->p[norm1].value, b->n1), B);
    x += swiglu_forward<Scalar>(rmsnorm_forward<Scalar>(x, b->p[norm2].value, b->n2), b->p[W_gate].value,
                                b->p[W_up].value, b->p[W_down].value, b->mlp);
  }
  x_final_ = x;
  xn_final_ = rmsnorm_forward<Scalar>(x, top_[norm_f].value, norm_f_);
  return linear_forward(xn_final_, top_[lm_head].value);
}

template <class Scalar>
double MambaLm<Scalar>::forward(const std::vector<std::int32_t>& tokens, const std::vector<std::int32_t>& targets,
                                Index B, Index* correct) {
  if (targets.size() != tokens.size())
    throw std::invalid_argument("targets: expected " + std::to_string(tokens.size()) +
                                " labels (one per token, -1 = masked), got " + std::to_string(targets.size()));
  for (std::size_t n = 0; n < targets.size(); ++n)
    if (targets[n] < -1 || targets[n] >= cfg_.vocab)
      throw std::invalid_argument("targets: expected -1 or ids in [0, " + std::to_string(cfg_.vocab) + "), got " +
                                  std::to_string(targets[n]) + " at " + std::to_string(n));
  return cross_entropy<Scalar>(logits(tokens, B), targets.data(), &dlogits_, correct);
}

template <class Scalar>
void MambaLm<Scalar>::backward() {
  if (dlogits_.size() == 0) throw std::logic_error("MambaLm::backward: expected a forward() first");
  const RowMatrix<Scalar> dlogits = std::move(dlogits_);
  dlogits_.resize(0, 0);
  // ---- backward, last line first ----
  RowMatrix<Scalar> dx = linear_backward(xn_final_, top_[lm_head].value, dlogits, top_[lm_head].grad);
  dx = rmsnorm_backward<Scalar>(dx, top_[norm_f].value, norm_f_, top_[norm_f].grad);
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    Block& b = **it;
    // forward: x += SwiGLU(RMSNorm(x)): the residual passes dx through, the branch adds to it.
    const RowMatrix<Scalar> dh2 = swiglu_backward<Scalar>(dx, b.p[W_gate].value, b.p[W_up].value, b.p[W_down].value,
                                                          b.mlp, b.p[W_gate].grad, b.p[W_up].grad, b.p[W_down].grad);
    dx += rmsnorm_backward<Scalar>(dh2, b.p[norm2].value, b.n2, b.p[norm2].grad);
    // forward: x += mixer(RMSNorm(x)).
    const RowMatrix<Scalar> dh1 = b.mixer_backward(dx);
    dx += rmsnorm_backward<Scalar>(dh1, b.p[norm1].value, b.n1, b.p[norm1].grad);
  }
  // forward: x = embedding[tokens].
  embedding_backward<Scalar>(tokens_, dx, top_[embedding].grad);
}

template class MambaLm<float>;
template class MambaLm<double>;

}  // namespace loglinear::nn
