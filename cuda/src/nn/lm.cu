// The log-linear Mamba-2 LM on the GPU (loglinear/cuda/nn/lm.hpp). Every block names the CPU line it
// mirrors (reference/loglinear/nn/lm.cpp); the mixer is cuda/src/nn/mamba2_mixer.cu, the layers
// cuda/src/nn/<layer>.cu. The residual stream x is one matrix updated in place, as on the CPU; the
// normed copies, the branch outputs and the backward's gradients are temporaries shared by the blocks
// (stream order keeps one block's use before the next's).
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/nn/cross_entropy.hpp>
#include <loglinear/cuda/nn/embedding.hpp>
#include <loglinear/cuda/nn/linear.hpp>
#include <loglinear/cuda/nn/lm.hpp>
#include <loglinear/cuda/nn/mamba2_mixer.hpp>
#include <loglinear/cuda/nn/rmsnorm.hpp>
#include <loglinear/cuda/nn/swiglu.hpp>

#include <map>
#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {
enum Top { embedding, norm_f, lm_head };
enum BlockParam { norm1, norm2, W_gate, W_up, W_down };
}  // namespace

struct MambaLm::Impl {
  struct Block {
    std::vector<DeviceParam> p;  // BlockParam order
    Mamba2Mixer mixer;
    // Cache of the last forward: the two norms' and the MLP's (the mixer keeps its own).
    RmsNormCache n1, n2;
    SwiGluCache mlp;
  };
  std::vector<DeviceParam> top;  // Top order
  std::vector<Block> blocks;
  // Cache of the last forward.
  bool pending = false;  // a forward whose backward has not run
  DeviceTokens tokens;
  DeviceMatrix x, xn_final, logits, dlogits;
  RmsNormCache norm_f;
  // Forward temporaries (a block's normed input and its branch's output) and backward temporaries.
  DeviceMatrix h, branch, dxn, dx, dh;
};

MambaLm::MambaLm(loglinear::nn::MambaLm<float>& cpu) : cfg_(cpu.config()), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const cudaStream_t s = ctx_.stream();
  // The CPU twin's parameters by name: each GPU part takes its own from this map.
  std::map<std::string, Param<float>*> by_name;
  for (Param<float>* p : cpu.params()) by_name[p->name] = p;
  auto take = [&](const std::string& name) -> DeviceParam {
    const auto it = by_name.find(name);
    if (it == by_name.end()) throw std::logic_error("cuda::nn::MambaLm: the CPU model has no parameter " + name);
    return DeviceParam(*it->second, s);
  };
  for (const char* name : {"embedding", "norm_f", "lm_head"}) m.top.push_back(take(name));
  m.blocks.reserve(size_t(cpu.num_layers()));
  for (Index i = 0; i < cpu.num_layers(); ++i) {
    const std::string pre = "blocks." + std::to_string(i) + ".";
    std::vector<DeviceParam> p;
    for (const char* name : {"norm1", "norm2", "mlp.W_gate", "mlp.W_up", "mlp.W_down"}) p.push_back(take(pre + name));
    m.blocks.push_back(Impl::Block{std::move(p), Mamba2Mixer(cpu.mixer(i), ctx_), {}, {}, {}});
    // The blocks run one after another on ctx_: one set of mixer temporaries serves them all.
    if (i > 0) m.blocks.back().mixer.share_temporaries(m.blocks.front().mixer);
  }
  // The twin must list the CPU model's parameters in the CPU's order, or checkpoints would mix up.
  check_same_params("cuda::nn::MambaLm", cpu.params(), params());
}

MambaLm::~MambaLm() = default;
MambaLm::MambaLm(MambaLm&&) noexcept = default;

std::vector<DeviceParam*> MambaLm::params() {
  // As loglinear::nn::MambaLm::params(): top, then per block its own five and the mixer's.
  std::vector<DeviceParam*> out;
  for (auto& p : impl_->top) out.push_back(&p);
  for (auto& b : impl_->blocks) {
    for (auto& p : b.p) out.push_back(&p);
    for (auto* p : b.mixer.params()) out.push_back(p);
  }
  return out;
}

void MambaLm::zero_grad() {
  for (DeviceParam* p : params()) p->grad.set_zero(ctx_.stream());
}

double MambaLm::forward(const std::vector<std::int32_t>& tokens, const std::vector<std::int32_t>& targets, Index B,
                        Index* correct) {
  // The CPU twin's checks, in its order (forward(), then logits()); DeviceTokens::set checks the ids.
  if (targets.size() != tokens.size())
    throw std::invalid_argument("targets: expected " + std::to_string(tokens.size()) +
                                " labels (one per token, -1 = masked), got " + std::to_string(targets.size()));
  Index scored = 0;
  for (std::size_t n = 0; n < targets.size(); ++n) {
    if (targets[n] < -1 || targets[n] >= cfg_.vocab)
      throw std::invalid_argument("targets: expected -1 or ids in [0, " + std::to_string(cfg_.vocab) + "), got " +
                                  std::to_string(targets[n]) + " at " + std::to_string(n));
    scored += targets[n] >= 0;
  }
  if (B < 1 || tokens.empty() || Index(tokens.size()) % B != 0)
    throw std::invalid_argument("tokens: expected B*T ids with B = " + std::to_string(B) + " and T >= 1, got " +
                                std::to_string(tokens.size()));
  Impl& m = *impl_;
  m.pending = false;
  const Index N = Index(tokens.size());
  m.tokens.set(tokens.data(), N, cfg_.vocab, ctx_.stream(), targets.data());  // ids and targets, one pinned copy
  // forward: x = embedding[tokens].
  embedding_forward(ctx_, m.tokens, m.top[embedding].value, m.x);
  // Pre-norm residual blocks: x += mixer(RMSNorm(x)); x += SwiGLU(RMSNorm(x)).
  for (auto& b : m.blocks) {
    rmsnorm_forward(ctx_, m.x, b.p[norm1].value, b.n1, m.h);
    b.mixer.forward(ctx_, m.h, B, m.branch);
    add_into(ctx_, m.branch, m.x);
    rmsnorm_forward(ctx_, m.x, b.p[norm2].value, b.n2, m.h);
    swiglu_forward(ctx_, m.h, b.p[W_gate].value, b.p[W_up].value, b.p[W_down].value, b.mlp, m.branch);
    add_into(ctx_, m.branch, m.x);
  }
  rmsnorm_forward(ctx_, m.x, m.top[norm_f].value, m.norm_f, m.xn_final);
  linear_forward(ctx_, m.xn_final, m.top[lm_head].value, m.logits);
  const double loss = cross_entropy(ctx_, m.logits, m.tokens.targets(), scored, &m.dlogits, correct);
  m.pending = true;
  return loss;
}

void MambaLm::backward() {
  Impl& m = *impl_;
  if (!m.pending) throw std::logic_error("cuda::nn::MambaLm::backward: expected a forward() first");
  m.pending = false;
  // forward: logits = xn_final lm_head^T, xn_final = RMSNorm(x).
  linear_backward(ctx_, m.xn_final, m.top[lm_head].value, m.dlogits, m.top[lm_head].grad, m.dxn);
  rmsnorm_backward(ctx_, m.dxn, m.top[norm_f].value, m.norm_f, m.top[norm_f].grad, m.dx);
  for (auto it = m.blocks.rbegin(); it != m.blocks.rend(); ++it) {
    Impl::Block& b = *it;
    // forward: x += SwiGLU(RMSNorm(x)): the residual passes dx through, the branch adds to it.
    swiglu_backward(ctx_, m.dx, b.p[W_gate].value, b.p[W_up].value, b.p[W_down].value, b.mlp, b.p[W_gate].grad,
                    b.p[W_up].grad, b.p[W_down].grad, m.dh);
    rmsnorm_backward(ctx_, m.dh, b.p[norm2].value, b.n2, b.p[norm2].grad, m.dx, true);
    // forward: x += mixer(RMSNorm(x)).
    b.mixer.backward(ctx_, m.dx, m.dh);
    rmsnorm_backward(ctx_, m.dh, b.p[norm1].value, b.n1, b.p[norm1].grad, m.dx, true);
  }
  // forward: x = embedding[tokens].
  embedding_backward(ctx_, m.tokens, m.dx, m.top[embedding].grad);
}

const DeviceMatrix& MambaLm::last_decay(Index layer) const {
  if (layer < 0 || layer >= Index(impl_->blocks.size()))
    throw std::invalid_argument("layer: expected in [0, " + std::to_string(impl_->blocks.size()) + "), got " +
                                std::to_string(layer));
  return impl_->blocks[size_t(layer)].mixer.last_decay();
}

const DeviceMatrix& MambaLm::last_lambda(Index layer) const {
  last_decay(layer);  // the range check
  return impl_->blocks[size_t(layer)].mixer.last_lambda();
}

void MambaLm::set_attention_precision(Precision p) {
  for (auto& b : impl_->blocks) b.mixer.set_attention_precision(p);
}

}  // namespace loglinear::cuda::nn
