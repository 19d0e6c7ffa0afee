// Task model forward and backward (task_model.hpp). Every backward block names the forward line
// it differentiates; the operator's own backward is attention/*.cpp.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/models/task_model.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace loglinear::models {

namespace {
enum LayerParam { Wq, Wk, Wv, Wdl, Wdt, dt_bias, A_log, Wo, ln_g, ln_b };
enum TopParam { embedding, lnf_g, lnf_b, head };

template <class Scalar>
RowMatrix<Scalar> normal(Index rows, Index cols, double std, std::mt19937_64& rng) {
  std::normal_distribution<double> n(0.0, std);
  RowMatrix<Scalar> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = Scalar(n(rng));
  return m;
}

ValueStats stats_of(std::vector<double> xs) {
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
}  // namespace

template <class Scalar>
struct TaskModel<Scalar>::Layer {
  std::vector<Param<Scalar>> p;
  LevelWeights<Scalar> lam;
  // Cache of the last forward, all [N, features] with N = B*T.
  RowMatrix<Scalar> x, q, k, v, dl, dt_pre, g, lamv, o;
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
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  for (Index i = 0; i < c.layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    auto layer = std::make_unique<Layer>(c, rng, pre);
    auto& p = layer->p;
    p.emplace_back(pre + "Wq", normal<Scalar>(d, d, 0.02, rng));   // H*K = d
    p.emplace_back(pre + "Wk", normal<Scalar>(d, d, 0.02, rng));
    p.emplace_back(pre + "Wv", normal<Scalar>(d, d, 0.02, rng));   // H*V = d
    p.emplace_back(pre + "Wdl", normal<Scalar>(H * L, d, 0.02, rng));
    p.emplace_back(pre + "Wdt", normal<Scalar>(H, d, 0.02, rng));
    // dt_bias = softplus^-1(dt0), dt0 log-uniform on [1e-3, 0.1] floored at 1e-4 (SPEC.md §8).
    M bias(1, H), alog(1, H);
    for (Index h = 0; h < H; ++h) {
      const double dt0 = std::max(1e-4, std::exp(u01(rng) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3)));
      bias(0, h) = softplus_inverse(Scalar(dt0));
      alog(0, h) = Scalar(std::log(double(h + 1)));  // A = -(1..H)
    }
    p.emplace_back(pre + "dt_bias", bias, false);
    p.emplace_back(pre + "A_log", alog, false);
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
  for (auto& layer : layers_) {
    for (auto& p : layer->p) out.push_back(&p);
    for (auto* p : layer->lam.params()) out.push_back(p);
  }
  return out;
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
  for (auto& lp : layers_) {
    Layer& l = *lp;
    auto& p = l.p;
    l.x = x;
    l.q = linear_forward(x, p[Wq].value);
    l.k = linear_forward(x, p[Wk].value);
    l.v = linear_forward(x, p[Wv].value);
    l.dl = linear_forward(x, p[Wdl].value);
    // g = -exp(A_log) softplus(x Wdt^T + dt_bias): a log-decay <= 0 per token and head.
    l.dt_pre = linear_forward(x, p[Wdt].value).rowwise() + p[dt_bias].value.row(0);
    l.g.resize(N, H);
    for (Index n = 0; n < N; ++n)
      for (Index h = 0; h < H; ++h)
        l.g(n, h) = -std::exp(p[A_log].value(0, h)) * softplus(l.dt_pre(n, h));
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
    // forward: g = -exp(A_log) sp(u), u = x Wdt^T + dt_bias:
    // dg/du = -exp(A_log) sigmoid(u), dg/dA_log = g.
    RowMatrix<Scalar> ddt(N, H);
    for (Index n = 0; n < N; ++n)
      for (Index h = 0; h < H; ++h) {
        ddt(n, h) = dg(n, h) * -std::exp(p[A_log].value(0, h)) * sigmoid(l.dt_pre(n, h));
        p[A_log].grad(0, h) += dg(n, h) * l.g(n, h);
      }
    p[dt_bias].grad.row(0) += ddt.colwise().sum();
    // forward: lam = LevelWeights(dl).
    const RowMatrix<Scalar> ddl = l.lam.backward(dlam);
    // forward: q, k, v, dl, dt = x W^T: every projection sends its gradient back to x.
    dx += linear_backward(l.x, p[Wq].value, dq, p[Wq].grad);
    dx += linear_backward(l.x, p[Wk].value, dk, p[Wk].grad);
    dx += linear_backward(l.x, p[Wv].value, dv, p[Wv].grad);
    dx += linear_backward(l.x, p[Wdl].value, ddl, p[Wdl].grad);
    dx += linear_backward(l.x, p[Wdt].value, ddt, p[Wdt].grad);
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
      per_level.push_back(stats_of(std::move(xs)));
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
    out.push_back(stats_of(std::move(xs)));
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

template class TaskModel<float>;
template class TaskModel<double>;

}  // namespace loglinear::models
