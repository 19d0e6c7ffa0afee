// Task model forward and backward (task_model.hpp). Every backward block names the forward line
// it differentiates; the operator's own backward is attention/*.cpp.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/decay/decay.hpp>
#include <loglinear/models/task_model.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace loglinear::models {

namespace {
enum LayerParam { Wq, Wk, Wv, Wdl, Wo, ln_g, ln_b };
enum TopParam { embedding, lnf_g, lnf_b, head };

template <class Scalar>
RowMatrix<Scalar> normal(Index rows, Index cols, double std, std::mt19937_64& rng) {
  std::normal_distribution<double> n(0.0, std);
  RowMatrix<Scalar> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = Scalar(n(rng));
  return m;
}

}  // namespace

ValueStats value_stats(std::vector<double> xs) {
  ValueStats s;
  if (xs.empty()) return s;
  std::sort(xs.begin(), xs.end());
  double sum = 0, sq = 0;
  for (double x : xs) sum += x;
  s.mean = sum / double(xs.size());
  for (double x : xs) sq += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(sq / double(xs.size()));
  s.min = xs.front();
  s.max = xs.back();
  s.median = xs[xs.size() / 2];
  return s;
}

template <class Scalar>
struct TaskModel<Scalar>::Layer {
  std::vector<Param<Scalar>> p;                  // LayerParam order
  std::optional<Param<Scalar>> Wdt;              // decay pre-activation projection [H, d]
  std::unique_ptr<decay::Decay<Scalar>> decay;   // g = phi(x Wdt^T) <= 0 (decay/)
  LevelWeights<Scalar> lam;
  // Cache of the last forward, all [N, features] with N = B*T.
  RowMatrix<Scalar> x, q, k, v, dl, g, lamv, o;
  LayerNormCache<Scalar> ln;
  Layer(const TaskModelConfig& c, std::mt19937_64& rng, const std::string& prefix)
      : lam(c.lambda, c.heads, c.levels, c.mlp_hidden, rng, prefix + "lambda.") {}
};

template <class Scalar>
TaskModel<Scalar>::TaskModel(const TaskModelConfig& c, std::uint64_t seed) : cfg_(c) {
  if (c.vocab < 2 || c.d_model < 1 || c.layers < 1 || c.heads < 1 || c.levels < 1) {
    throw std::invalid_argument("config: expected vocab >= 2 and d_model, layers, heads, levels >= 1");
  }
  if (c.d_model % c.heads != 0) {
    throw std::invalid_argument("d_model: expected a multiple of heads = " + std::to_string(c.heads) +
                                ", got " + std::to_string(c.d_model));
  }
  std::mt19937_64 rng(seed);
  using M = RowMatrix<Scalar>;
  const Index d = c.d_model, H = c.heads, L = c.levels;
  top_.emplace_back("embedding", normal<Scalar>(c.vocab, d, 0.02, rng));
  top_.emplace_back("norm_f.gamma", M::Ones(1, d), false);
  top_.emplace_back("norm_f.beta", M::Zero(1, d), false);
  top_.emplace_back("lm_head", normal<Scalar>(c.vocab, d, 0.02, rng));
  if (c.decay == "hgrn2") gamma_.emplace("hgrn2.Gamma", M::Ones(c.layers, H), false);  // lb_i = i / layers
  for (Index i = 0; i < c.layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    auto layer = std::make_unique<Layer>(c, rng, pre);
    auto& p = layer->p;
    p.emplace_back(pre + "Wq", normal<Scalar>(d, d, 0.02, rng));   // H*K = d
    p.emplace_back(pre + "Wk", normal<Scalar>(d, d, 0.02, rng));
    p.emplace_back(pre + "Wv", normal<Scalar>(d, d, 0.02, rng));   // H*V = d
    p.emplace_back(pre + "Wdl", normal<Scalar>(H * L, d, 0.02, rng));
    // Wdt is drawn for every decay (kept only by data-dependent ones) and the decay then draws
    // from the model's generator (mamba2: dt_bias): the order of the draws when Mamba-2 was
    // hard-coded, so mamba2 models start where they used to.
    RowMatrix<Scalar> wdt = normal<Scalar>(H, d, 0.02, rng);
    decay::DecayOptions dopt;
    dopt.heads = H;
    dopt.layer = i;
    dopt.num_layers = c.layers;
    dopt.rng = &rng;
    dopt.prefix = pre;
    layer->decay = decay::make_decay<Scalar>(c.decay, dopt);
    if (layer->decay->data_dependent()) layer->Wdt.emplace(pre + "Wdt", std::move(wdt));
    p.emplace_back(pre + "Wo", normal<Scalar>(d, d, 0.01, rng));
    p.emplace_back(pre + "norm.gamma", M::Ones(1, d), false);
    p.emplace_back(pre + "norm.beta", M::Zero(1, d), false);
    layers_.push_back(std::move(layer));
  }
}

template <class Scalar>
TaskModel<Scalar>::~TaskModel() = default;
template <class Scalar>
TaskModel<Scalar>::TaskModel(TaskModel&&) noexcept = default;

template <class Scalar>
std::vector<Param<Scalar>*> TaskModel<Scalar>::params() {
  std::vector<Param<Scalar>*> out;
  for (auto& p : top_) out.push_back(&p);
  if (gamma_) out.push_back(&*gamma_);
  for (auto& layer : layers_) {
    auto& p = layer->p;
    for (int i : {Wq, Wk, Wv, Wdl}) out.push_back(&p[i]);
    if (layer->Wdt) out.push_back(&*layer->Wdt);
    for (auto* dp : layer->decay->params()) out.push_back(dp);
    for (int i : {Wo, ln_g, ln_b}) out.push_back(&p[i]);
    for (auto* lp : layer->lam.params()) out.push_back(lp);
  }
  return out;
}

template <class Scalar>
std::string TaskModel<Scalar>::architecture() const {
  return "task_model lambda=" + lambda_mode_name(cfg_.lambda) + " decay=" + cfg_.decay;
}

template <class Scalar>
void TaskModel<Scalar>::zero_grad() {
  for (auto* p : params()) p->grad.setZero();
}

template <class Scalar>
double TaskModel<Scalar>::step(const tasks::Batch& batch, bool backward, Index* correct) {
  const Index B = batch.tokens.dim(0), T = batch.tokens.dim(1), N = B * T;
  const Index d = cfg_.d_model, H = cfg_.heads, Dh = d / H, L = cfg_.levels;
  if (num_levels(T) > L) {
    throw std::invalid_argument("batch: length T = " + std::to_string(T) + " needs num_levels(T) = " +
                                std::to_string(num_levels(T)) + " levels, the model has levels = " +
                                std::to_string(L));
  }
  B_ = B;
  T_ = T;
  tokens_.assign(batch.tokens.values().begin(), batch.tokens.values().end());
  // Embedding lookup.
  RowMatrix<Scalar> x(N, d);
  for (Index n = 0; n < N; ++n) {
    const std::int32_t tok = tokens_[n];
    if (tok < 0 || tok >= cfg_.vocab) {
      throw std::invalid_argument("batch.tokens: expected ids in [0, " + std::to_string(cfg_.vocab) +
                                  "), got " + std::to_string(tok));
    }
    x.row(n) = top_[embedding].value.row(tok);
  }
  const ChunkedOptions opts{cfg_.chunk};
  // hgrn2: every layer's lower bound comes from the one model-level table (SPEC.md §14.2).
  if (gamma_) {
    const RowMatrix<Scalar> lb = decay::hgrn2_lower_bounds(gamma_->value);
    for (Index i = 0; i < cfg_.layers; ++i)
      dynamic_cast<decay::Hgrn2Decay<Scalar>&>(*layers_[i]->decay).set_lower_bound(lb.row(i));
  }
  for (auto& lp : layers_) {
    Layer& l = *lp;
    auto& p = l.p;
    l.x = x;
    l.q = linear_forward(x, p[Wq].value);
    l.k = linear_forward(x, p[Wk].value);
    l.v = linear_forward(x, p[Wv].value);
    l.dl = linear_forward(x, p[Wdl].value);
    // g = phi(x Wdt^T) <= 0 per token and head (mamba2: -exp(A_log) softplus(x Wdt^T + dt_bias));
    // a data-independent decay reads only the shape of u.
    const RowMatrix<Scalar> u = l.Wdt ? linear_forward(x, l.Wdt->value) : RowMatrix<Scalar>::Zero(N, H);
    l.g = l.decay->forward(u, B);
    l.lamv = l.lam.forward(l.dl);
    l.o.resize(N, d);
    const AttentionInputs<Scalar> in{{l.q.data(), {B, T, H, Dh}}, {l.k.data(), {B, T, H, Dh}},
                                     {l.v.data(), {B, T, H, Dh}}, {l.g.data(), {B, T, H}},
                                     {l.lamv.data(), {B, T, H, L}}};
    forward<Scalar>(cfg_.form, in, opts, TensorView<Scalar, 4>{l.o.data(), {B, T, H, Dh}});
    // Post-norm residual: x = LayerNorm(out_proj(o) + x).
    x = layernorm_forward<Scalar>(linear_forward(l.o, p[Wo].value) + x, p[ln_g].value, p[ln_b].value, l.ln);
  }
  x_final_ = layernorm_forward<Scalar>(x, top_[lnf_g].value, top_[lnf_b].value, ln_final_);
  const RowMatrix<Scalar> logits = linear_forward(x_final_, top_[head].value);
  RowMatrix<Scalar> dlogits;
  const double loss = cross_entropy<Scalar>(logits, batch.targets.data(), backward ? &dlogits : nullptr, correct);
  if (!backward) return loss;

  // ---- backward, last line first ----
  RowMatrix<Scalar> dx = linear_backward(x_final_, top_[head].value, dlogits, top_[head].grad);
  dx = layernorm_backward<Scalar>(dx, top_[lnf_g].value, ln_final_, top_[lnf_g].grad, top_[lnf_b].grad);
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    Layer& l = **it;
    auto& p = l.p;
    // forward: x_out = LN(o Wo^T + x_in): the residual passes dz to x_in unchanged.
    const RowMatrix<Scalar> dz = layernorm_backward<Scalar>(dx, p[ln_g].value, l.ln, p[ln_g].grad, p[ln_b].grad);
    dx = dz;
    const RowMatrix<Scalar> dout = linear_backward(l.o, p[Wo].value, dz, p[Wo].grad);
    // forward: o = LogLinearAttention(q, k, v, g, lam).
    RowMatrix<Scalar> dq(N, d), dk(N, d), dv(N, d), dg(N, H), dlam(N, H * L);
    const AttentionInputs<Scalar> in{{l.q.data(), {B, T, H, Dh}}, {l.k.data(), {B, T, H, Dh}},
                                     {l.v.data(), {B, T, H, Dh}}, {l.g.data(), {B, T, H}},
                                     {l.lamv.data(), {B, T, H, L}}};
    const AttentionGrads<Scalar> grads{{dq.data(), {B, T, H, Dh}}, {dk.data(), {B, T, H, Dh}},
                                       {dv.data(), {B, T, H, Dh}}, {dg.data(), {B, T, H}},
                                       {dlam.data(), {B, T, H, L}}};
    loglinear::backward<Scalar>(cfg_.form, in, opts, ConstTensorView<Scalar, 4>{dout.data(), {B, T, H, Dh}}, grads);
    // forward: g = phi(u; theta), u = x Wdt^T: the decay adds dtheta and returns du.
    const RowMatrix<Scalar> du = l.decay->backward(dg);
    // forward: lam = LevelWeights(dl).
    const RowMatrix<Scalar> ddl = l.lam.backward(dlam);
    // forward: q, k, v, dl, u = x W^T: every projection sends its gradient back to x.
    dx += linear_backward(l.x, p[Wq].value, dq, p[Wq].grad);
    dx += linear_backward(l.x, p[Wk].value, dk, p[Wk].grad);
    dx += linear_backward(l.x, p[Wv].value, dv, p[Wv].grad);
    dx += linear_backward(l.x, p[Wdl].value, ddl, p[Wdl].grad);
    if (l.Wdt) dx += linear_backward(l.x, l.Wdt->value, du, l.Wdt->grad);
  }
  // forward: lb = hgrn2_lower_bounds(Gamma), row i the lower bound of layer i.
  if (gamma_) {
    RowMatrix<Scalar> dlb(cfg_.layers, cfg_.heads);
    for (Index i = 0; i < cfg_.layers; ++i)
      dlb.row(i) = dynamic_cast<const decay::Hgrn2Decay<Scalar>&>(*layers_[i]->decay).lower_bound_grad();
    decay::hgrn2_lower_bounds_backward(gamma_->value, dlb, gamma_->grad);
  }
  // forward: x = embedding[tokens].
  for (Index n = 0; n < N; ++n) top_[embedding].grad.row(tokens_[n]) += dx.row(n);
  return loss;
}

template <class Scalar>
std::vector<std::vector<ValueStats>> TaskModel<Scalar>::lambda_stats() const {
  std::vector<std::vector<ValueStats>> out;
  const Index H = cfg_.heads, L = cfg_.levels;
  for (const auto& l : layers_) {
    std::vector<ValueStats> per_level;
    for (Index lev = 0; lev < L; ++lev) {
      std::vector<double> xs;
      for (Index n = 0; n < l->lamv.rows(); ++n)
        for (Index h = 0; h < H; ++h) xs.push_back(double(l->lamv(n, h * L + lev)));
      per_level.push_back(value_stats(std::move(xs)));
    }
    out.push_back(per_level);
  }
  return out;
}

template <class Scalar>
std::vector<ValueStats> TaskModel<Scalar>::decay_stats() const {
  std::vector<ValueStats> out;
  for (const auto& l : layers_) {
    std::vector<double> xs;
    for (Index i = 0; i < l->g.size(); ++i) xs.push_back(std::exp(double(l->g.data()[i])));
    out.push_back(value_stats(std::move(xs)));
  }
  return out;
}

template <class Scalar>
RowMatrix<Scalar> TaskModel<Scalar>::lambda_of(Index layer, Index sequence) const {
  if (layer < 0 || layer >= Index(layers_.size()) || sequence < 0 || sequence >= B_) {
    throw std::invalid_argument("lambda_of: expected layer < " + std::to_string(layers_.size()) +
                                " and sequence < " + std::to_string(B_));
  }
  return layers_[layer]->lamv.middleRows(sequence * T_, T_);
}

template <class Scalar>
const typename TaskModel<Scalar>::Layer& TaskModel<Scalar>::layer_at(Index layer) const {
  if (layer < 0 || layer >= Index(layers_.size()))
    throw std::invalid_argument("layer: expected 0 <= layer < " + std::to_string(layers_.size()) + ", got " +
                                std::to_string(layer));
  return *layers_[layer];
}

template <class Scalar>
const RowMatrix<Scalar>& TaskModel<Scalar>::last_decay(Index layer) const { return layer_at(layer).g; }

template <class Scalar>
const RowMatrix<Scalar>& TaskModel<Scalar>::last_lambda(Index layer) const { return layer_at(layer).lamv; }

template class TaskModel<float>;
template class TaskModel<double>;

}  // namespace loglinear::models
