// The task model on the GPU (loglinear/cuda/nn/task_model.hpp). Every block names the CPU line it
// mirrors (reference/loglinear/nn/task_model.cpp); the operator's kernels are cuda/src/attention/,
// lambda's cuda/src/lambda/, the decays' cuda/src/decay/.
#include <loglinear/core/checks.hpp>
#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/decay/decay_stack.hpp>
#include <loglinear/cuda/lambda/lambda.hpp>
#include <loglinear/cuda/nn/cross_entropy.hpp>
#include <loglinear/cuda/nn/embedding.hpp>
#include <loglinear/cuda/nn/layernorm.hpp>
#include <loglinear/cuda/nn/linear.hpp>
#include <loglinear/cuda/nn/task_model.hpp>
#include <loglinear/decay/decay_stack.hpp>
#include <loglinear/lambda/lambda.hpp>

#include "attention.cuh"

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {
enum LayerParam { Wq, Wk, Wv, Wdl, Wo, ln_g, ln_b };
enum TopParam { embedding, lnf_g, lnf_b, head };
}  // namespace

struct TaskModel::Impl {
  struct Layer {
    std::vector<DeviceParam> p;                    // LayerParam order
    std::optional<DeviceParam> Wdt;                // decay pre-activation projection [H, d]
    decay::Decay* decay = nullptr;                 // owned by the stack
    std::unique_ptr<lambda::LevelWeights> lam;
    // Cache of the last forward, [N, features]; the layer's input is the previous layer's `out`.
    DeviceMatrix q, k, v, dl, u, g, lamv, o, z, out;
    LayerNormCache ln;
  };
  std::vector<DeviceParam> top;                    // TopParam order
  Precision attention = Precision::fp32;           // the operator's storage (set_attention_precision)
  std::unique_ptr<decay::DecayStack> decays;
  std::vector<Layer> layers;
  // Cache of the last forward.
  Index B = 0, T = 0;
  bool pending = false;  // a forward whose backward has not run
  DeviceTokens tokens;  // and the targets
  DeviceMatrix x0, x_final, logits, dlogits;
  LayerNormCache ln_final;
  // Backward temporaries, reused by every layer (stream order keeps one layer's use before the next).
  DeviceMatrix dx, dz, dx_final, dout, dq, dk, dv, dg, dlam, du, ddl;
};

TaskModel::TaskModel(loglinear::nn::TaskModel<float>& cpu) : cfg_(cpu.config()), impl_(std::make_unique<Impl>()) {
  if (cfg_.form != Form::chunked)
    throw std::invalid_argument("form: expected chunked on the GPU (the CUDA backend has only the chunked form), got " +
                                form_name(cfg_.form));
  if (cfg_.chunk > kMaxGpuChunk || (cfg_.chunk & (cfg_.chunk - 1)) != 0)
    throw std::invalid_argument("chunk: expected a power of two <= 64 on the GPU (the operator's shared-memory "
                                "tiles), got " + std::to_string(cfg_.chunk));
  Impl& m = *impl_;
  const cudaStream_t s = ctx_.stream();
  // The CPU twin's parameters by name: each GPU layer takes its own from this map.
  std::map<std::string, Param<float>*> by_name;
  for (Param<float>* p : cpu.params()) by_name[p->name] = p;
  auto take = [&](const std::string& name) -> DeviceParam {
    const auto it = by_name.find(name);
    if (it == by_name.end()) throw std::logic_error("cuda::nn::TaskModel: the CPU model has no parameter " + name);
    return DeviceParam(*it->second, s);
  };
  for (const char* name : {"embedding", "norm_f.gamma", "norm_f.beta", "lm_head"}) m.top.push_back(take(name));
  m.decays = decay::make_decay_stack(cpu.decays(), ctx_);
  m.layers.resize(size_t(cfg_.layers));
  for (Index i = 0; i < cfg_.layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    Impl::Layer& l = m.layers[size_t(i)];
    for (const char* name : {"Wq", "Wk", "Wv", "Wdl", "Wo", "norm.gamma", "norm.beta"}) l.p.push_back(take(pre + name));
    l.decay = &m.decays->layer(i);
    if (l.decay->data_dependent()) l.Wdt.emplace(take(pre + "Wdt"));
    l.lam = lambda::make_level_weights(cpu.level_weights(i), cfg_.heads, cfg_.levels, ctx_);
  }
  // The twin must list the CPU model's parameters in the CPU's order, or checkpoints would mix up.
  check_same_params("cuda::nn::TaskModel", cpu.params(), params());
}

TaskModel::~TaskModel() = default;
TaskModel::TaskModel(TaskModel&&) noexcept = default;

std::vector<DeviceParam*> TaskModel::params() {
  // As loglinear::nn::TaskModel::params(): top, the decay's shared ones, then per layer Wq, Wk, Wv,
  // Wdl, [Wdt], the decay's own, Wo, norm.gamma, norm.beta, lambda's.
  Impl& m = *impl_;
  std::vector<DeviceParam*> out;
  for (auto& p : m.top) out.push_back(&p);
  for (auto* sp : m.decays->shared_params()) out.push_back(sp);
  for (auto& l : m.layers) {
    for (int i : {Wq, Wk, Wv, Wdl}) out.push_back(&l.p[size_t(i)]);
    if (l.Wdt) out.push_back(&*l.Wdt);
    for (auto* dp : l.decay->params()) out.push_back(dp);
    for (int i : {Wo, ln_g, ln_b}) out.push_back(&l.p[size_t(i)]);
    for (auto* lp : l.lam->params()) out.push_back(lp);
  }
  return out;
}

void TaskModel::zero_grad() {
  for (DeviceParam* p : params()) p->grad.set_zero(ctx_.stream());
}

double TaskModel::forward(const tasks::Batch& batch, Index* correct) {
  loglinear::nn::check_batch(batch, cfg_.vocab, cfg_.levels);
  Impl& m = *impl_;
  m.pending = false;  // the caches are about to change: a backward after a failed forward is refused
  const Index B = batch.tokens.dim(0), T = batch.tokens.dim(1), N = B * T;
  const Index d = cfg_.d_model, H = cfg_.heads, Dh = d / H, L = cfg_.levels;
  m.B = B;
  m.T = T;
  m.tokens.set(batch.tokens.data(), N, cfg_.vocab, ctx_.stream(), batch.targets.data());  // one pinned copy
  // forward: x = embedding[tokens].
  embedding_forward(ctx_, m.tokens, m.top[embedding].value, m.x0);
  const AttentionDims dims{B, T, H, H, Dh, Dh, L};
  const ChunkedOptions opts{effective_chunk_size(cfg_.chunk, T)};
  m.decays->forward(ctx_);  // shared decay parameters set up each layer's part (hgrn2)
  const DeviceMatrix* x = &m.x0;
  for (auto& l : m.layers) {
    auto& p = l.p;
    linear_forward(ctx_, *x, p[Wq].value, l.q);
    linear_forward(ctx_, *x, p[Wk].value, l.k);
    linear_forward(ctx_, *x, p[Wv].value, l.v);
    linear_forward(ctx_, *x, p[Wdl].value, l.dl);
    // g = phi(x Wdt^T) <= 0; a data-independent decay reads only the shape of u.
    if (l.Wdt) {
      linear_forward(ctx_, *x, l.Wdt->value, l.u);
    } else {
      l.u.resize(N, H);
      l.u.set_zero(ctx_.stream());
    }
    l.decay->forward(ctx_, l.u, B, l.g);
    l.lam->forward(ctx_, l.dl, l.lamv);
    l.o.resize(N, d);
    attention_forward(ctx_, m.attention, {l.q.data(), l.k.data(), l.v.data(), l.g.data(), l.lamv.data()}, dims, opts,
                      l.o.data());
    // Post-norm residual: x = LayerNorm(out_proj(o) + x).
    linear_forward(ctx_, l.o, p[Wo].value, l.z);
    add_into(ctx_, *x, l.z);
    layernorm_forward(ctx_, l.z, p[ln_g].value, p[ln_b].value, l.ln, l.out);
    x = &l.out;
  }
  layernorm_forward(ctx_, *x, m.top[lnf_g].value, m.top[lnf_b].value, m.ln_final, m.x_final);
  linear_forward(ctx_, m.x_final, m.top[head].value, m.logits);
  m.pending = true;
  return cross_entropy(ctx_, m.logits, m.tokens.targets(), m.tokens.scored(), &m.dlogits, correct);
}

void TaskModel::backward() {
  Impl& m = *impl_;
  if (!m.pending) throw std::logic_error("cuda::nn::TaskModel::backward: expected a forward() first");
  m.pending = false;
  const Index B = m.B, T = m.T, N = B * T;
  const Index d = cfg_.d_model, H = cfg_.heads, Dh = d / H, L = cfg_.levels;
  const AttentionDims dims{B, T, H, H, Dh, Dh, L};
  const ChunkedOptions opts{effective_chunk_size(cfg_.chunk, T)};
  // forward: logits = x_final Wh^T, x_final = LayerNorm(x).
  linear_backward(ctx_, m.x_final, m.top[head].value, m.dlogits, m.top[head].grad, m.dx_final);
  layernorm_backward(ctx_, m.dx_final, m.top[lnf_g].value, m.ln_final, m.top[lnf_g].grad, m.top[lnf_b].grad, m.dx);
  for (size_t li = m.layers.size(); li-- > 0;) {
    Impl::Layer& l = m.layers[li];
    auto& p = l.p;
    const DeviceMatrix& x_in = li == 0 ? m.x0 : m.layers[li - 1].out;
    // forward: x_out = LN(o Wo^T + x_in): the residual passes dz to x_in unchanged.
    layernorm_backward(ctx_, m.dx, p[ln_g].value, l.ln, p[ln_g].grad, p[ln_b].grad, m.dz);
    linear_backward(ctx_, l.o, p[Wo].value, m.dz, p[Wo].grad, m.dout);
    // forward: o = LogLinearAttention(q, k, v, g, lam).
    m.dq.resize(N, d);
    m.dk.resize(N, d);
    m.dv.resize(N, d);
    m.dg.resize(N, H);
    m.dlam.resize(N, H * L);
    attention_backward(ctx_, m.attention, {l.q.data(), l.k.data(), l.v.data(), l.g.data(), l.lamv.data()}, dims,
                       opts, m.dout.data(), {m.dq.data(), m.dk.data(), m.dv.data(), m.dg.data(), m.dlam.data()});
    // forward: g = phi(u; theta), u = x Wdt^T: the decay adds dtheta and returns du.
    l.decay->backward(ctx_, m.dg, m.du);
    // forward: lam = LevelWeights(dl).
    l.lam->backward(ctx_, m.dlam, m.ddl);
    // forward: q, k, v, dl, u = x W^T: every projection sends its gradient back to x (into dz,
    // which already holds the residual's share).
    linear_backward(ctx_, x_in, p[Wq].value, m.dq, p[Wq].grad, m.dz, true);
    linear_backward(ctx_, x_in, p[Wk].value, m.dk, p[Wk].grad, m.dz, true);
    linear_backward(ctx_, x_in, p[Wv].value, m.dv, p[Wv].grad, m.dz, true);
    linear_backward(ctx_, x_in, p[Wdl].value, m.ddl, p[Wdl].grad, m.dz, true);
    if (l.Wdt) linear_backward(ctx_, x_in, l.Wdt->value, m.du, l.Wdt->grad, m.dz, true);
    std::swap(m.dx, m.dz);  // d(loss)/d(x_in) is the next (lower) layer's d(loss)/d(x_out)
  }
  m.decays->backward(ctx_);  // the shared decay parameters' gradients, from every layer's
  // forward: x = embedding[tokens].
  embedding_backward(ctx_, m.tokens, m.dx, m.top[embedding].grad);
}

const DeviceMatrix& TaskModel::last_decay(Index layer) const {
  if (layer < 0 || layer >= Index(impl_->layers.size()))
    throw std::invalid_argument("layer: expected 0 <= layer < " + std::to_string(impl_->layers.size()) + ", got " +
                                std::to_string(layer));
  return impl_->layers[size_t(layer)].g;
}

const DeviceMatrix& TaskModel::last_lambda(Index layer) const {
  last_decay(layer);  // the range check
  return impl_->layers[size_t(layer)].lamv;
}

void TaskModel::set_attention_precision(Precision p) { impl_->attention = p; }

}  // namespace loglinear::cuda::nn
