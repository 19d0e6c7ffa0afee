// Task model forward and backward (task_model.hpp). Every backward block names the forward line
// it differentiates; the operator's own backward is attention/*.cpp, lambda's lambda/<mode>.cpp,
// the decay's decay/<key>.cpp.
#include <loglinear/attention/gdn_forms.hpp>
#include <loglinear/core/activations.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/init.hpp>
#include <loglinear/decay/decay_stack.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/nn/cross_entropy.hpp>
#include <loglinear/nn/l2norm.hpp>
#include <loglinear/nn/linear.hpp>
#include <loglinear/nn/task_model.hpp>

#include <optional>
#include <random>
#include <stdexcept>

namespace loglinear::nn {

namespace {
enum LayerParam { Wq, Wk, Wv, Wdl, Wo, ln_g, ln_b };
enum TopParam { embedding, lnf_g, lnf_b, head };
// Seeds of the generators of lambda and of the decays, derived from the model's seed so that
// one --seed fixes everything while each part draws independently of the others.
constexpr std::uint64_t kLambdaSeed = 0x9e3779b97f4a7c15ULL;
constexpr std::uint64_t kDecaySeed = 0xbf58476d1ce4e5b9ULL;
constexpr std::uint64_t kBetaSeed = 0x94d049bb133111ebULL;  // Wb of the gdn mixer
}  // namespace

template <class Scalar>
struct TaskModel<Scalar>::Layer {
  std::vector<Param<Scalar>> p;                  // LayerParam order
  std::optional<Param<Scalar>> Wdt;              // decay pre-activation projection [H, d]
  std::optional<Param<Scalar>> Wb;               // mixer gdn: write-strength projection [H, d]
  decay::Decay<Scalar>* decay = nullptr;         // g = phi(x Wdt^T) <= 0, owned by the stack
  std::unique_ptr<lambda::LevelWeights<Scalar>> lam;
  std::optional<LambdaOverride<Scalar>> lam_override;  // set_lambda_override (forward only)
  // Cache of the last forward, all [N, features] with N = B*T.
  RowMatrix<Scalar> x, q, k, v, dl, g, lamv, o;
  LayerNormCache<Scalar> ln;
  // mixer gdn: q and k above are L2-normalised (their caches here), beta = sigmoid(x Wb^T).
  RowMatrix<Scalar> beta;
  L2NormCache<Scalar> qn, kn;

  // Views of the cached operator inputs for a [B, T] batch with H heads of width Dh.
  AttentionInputs<Scalar> inputs(Index B, Index T, Index H, Index Dh, Index L) const {
    return {{q.data(), {B, T, H, Dh}}, {k.data(), {B, T, H, Dh}}, {v.data(), {B, T, H, Dh}},
            {g.data(), {B, T, H}},     {lamv.data(), {B, T, H, L}}};
  }
  // The same plus beta, for the Gated DeltaNet operator (mixer gdn).
  GdnInputs<Scalar> gdn_inputs(Index B, Index T, Index H, Index Dh, Index L) const {
    return {inputs(B, T, H, Dh, L), {beta.data(), {B, T, H}}};
  }
  // lamv from the override: row n is table.row(types[n]); checks its shapes and ids first.
  void apply_override(Index layer_index, Index N, Index HL) {
    const auto& o = *lam_override;
    const std::string where = "lambda override of layer " + std::to_string(layer_index) + ": ";
    if (o.table.cols() != HL || Index(o.types.size()) != N)
      throw std::invalid_argument(where + "expected a table of H*L = " + std::to_string(HL) + " columns and " +
                                  std::to_string(N) + " types (B*T), got " + std::to_string(o.table.cols()) +
                                  " columns and " + std::to_string(o.types.size()) + " types");
    lamv.resize(N, HL);
    for (Index n = 0; n < N; ++n) {
      const std::int32_t t = o.types[size_t(n)];
      if (t < 0 || t >= o.table.rows())
        throw std::invalid_argument(where + "expected type ids in [0, " + std::to_string(o.table.rows()) +
                                    "), got " + std::to_string(t));
      lamv.row(n) = o.table.row(t);
    }
  }
};

void check_batch(const tasks::Batch& batch, Index vocab, Index L) {
  const Index B = batch.tokens.dim(0), T = batch.tokens.dim(1), N = B * T;
  if (num_levels(T) > L) {
    throw std::invalid_argument("batch: length T = " + std::to_string(T) + " needs num_levels(T) = " +
                                std::to_string(num_levels(T)) + " levels, the model has levels = " +
                                std::to_string(L));
  }
  if (batch.targets.dim(0) != B || batch.targets.dim(1) != T) {
    throw std::invalid_argument("batch.targets: expected shape [" + std::to_string(B) + "," + std::to_string(T) +
                                "] of batch.tokens, got [" + std::to_string(batch.targets.dim(0)) + "," +
                                std::to_string(batch.targets.dim(1)) + "]");
  }
  for (Index n = 0; n < N; ++n) {
    const std::int32_t tok = batch.tokens.values()[size_t(n)], tgt = batch.targets.values()[size_t(n)];
    if (tok < 0 || tok >= vocab)
      throw std::invalid_argument("batch.tokens: expected ids in [0, " + std::to_string(vocab) + "), got " +
                                  std::to_string(tok));
    if (tgt < -1 || tgt >= vocab)
      throw std::invalid_argument("batch.targets: expected -1 or ids in [0, " + std::to_string(vocab) +
                                  "), got " + std::to_string(tgt));
  }
}

template <class Scalar>
TaskModel<Scalar>::TaskModel(const TaskModelConfig& c, std::uint64_t seed) : cfg_(c) {
  if (c.vocab < 2 || c.d_model < 1 || c.layers < 1 || c.heads < 1 || c.levels < 1 || c.chunk < 1) {
    throw std::invalid_argument("config: expected vocab >= 2 and d_model, layers, heads, levels, chunk >= 1");
  }
  if (c.mixer != "mamba2" && c.mixer != "gdn")
    throw std::invalid_argument("mixer: expected one of mamba2, gdn, got \"" + c.mixer + "\"");
  if (c.d_model % c.heads != 0) {
    throw std::invalid_argument("d_model: expected a multiple of heads = " + std::to_string(c.heads) +
                                ", got " + std::to_string(c.d_model));
  }
  decay::DecayOptions dopt;
  dopt.heads = c.heads;
  dopt.p = c.decay_p;
  dopt.seed = seed ^ kDecaySeed;
  decays_ = decay::make_decay_stack<Scalar>(c.decay, dopt, c.layers);
  std::mt19937_64 rng(seed), lambda_rng(seed ^ kLambdaSeed), beta_rng(seed ^ kBetaSeed);
  using M = RowMatrix<Scalar>;
  const Index d = c.d_model, H = c.heads, L = c.levels;
  top_.emplace_back("embedding", init_normal<Scalar>(c.vocab, d, 0.02, rng));
  top_.emplace_back("norm_f.gamma", M::Ones(1, d), false);
  top_.emplace_back("norm_f.beta", M::Zero(1, d), false);
  top_.emplace_back("lm_head", init_normal<Scalar>(c.vocab, d, 0.02, rng));
  for (Index i = 0; i < c.layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    auto layer = std::make_unique<Layer>();
    auto& p = layer->p;
    p.emplace_back(pre + "Wq", init_normal<Scalar>(d, d, 0.02, rng));   // H*K = d
    p.emplace_back(pre + "Wk", init_normal<Scalar>(d, d, 0.02, rng));
    p.emplace_back(pre + "Wv", init_normal<Scalar>(d, d, 0.02, rng));   // H*V = d
    p.emplace_back(pre + "Wdl", init_normal<Scalar>(H * L, d, 0.02, rng));
    layer->decay = &decays_->layer(i);
    if (layer->decay->data_dependent()) layer->Wdt.emplace(pre + "Wdt", init_normal<Scalar>(H, d, 0.02, rng));
    if (c.mixer == "gdn") layer->Wb.emplace(pre + "Wb", init_normal<Scalar>(H, d, 0.02, beta_rng));
    p.emplace_back(pre + "Wo", init_normal<Scalar>(d, d, 0.01, rng));
    p.emplace_back(pre + "norm.gamma", M::Ones(1, d), false);
    p.emplace_back(pre + "norm.beta", M::Zero(1, d), false);
    layer->lam = lambda::make_level_weights<Scalar>(c.lambda, {H, L, c.mlp_hidden, pre + "lambda."}, lambda_rng);
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
  for (auto* sp : decays_->shared_params()) out.push_back(sp);
  for (auto& layer : layers_) {
    auto& p = layer->p;
    for (int i : {Wq, Wk, Wv, Wdl}) out.push_back(&p[i]);
    if (layer->Wdt) out.push_back(&*layer->Wdt);
    if (layer->Wb) out.push_back(&*layer->Wb);
    for (auto* dp : layer->decay->params()) out.push_back(dp);
    for (int i : {Wo, ln_g, ln_b}) out.push_back(&p[i]);
    for (auto* lp : layer->lam->params()) out.push_back(lp);
  }
  return out;
}

template <class Scalar>
std::string TaskModel<Scalar>::architecture() const {
  return "task_model lambda=" + cfg_.lambda + " decay=" + cfg_.decay + (cfg_.mixer == "gdn" ? " mixer=gdn" : "");
}

template <class Scalar>
void TaskModel<Scalar>::zero_grad() {
  for (auto* p : params()) p->grad.setZero();
}

template <class Scalar>
double TaskModel<Scalar>::forward(const tasks::Batch& batch, Index* correct) {
  check_batch(batch, cfg_.vocab, cfg_.levels);
  const Index B = batch.tokens.dim(0), T = batch.tokens.dim(1), N = B * T;
  const Index d = cfg_.d_model, H = cfg_.heads, Dh = d / H, L = cfg_.levels;
  B_ = B;
  T_ = T;
  tokens_.assign(batch.tokens.values().begin(), batch.tokens.values().end());
  // forward: x = embedding[tokens].
  RowMatrix<Scalar> x(N, d);
  for (Index n = 0; n < N; ++n) x.row(n) = top_[embedding].value.row(tokens_[size_t(n)]);
  const ChunkedOptions opts{cfg_.chunk};
  decays_->forward();  // decays with parameters shared across layers set up each layer's part
  overridden_ = false;
  for (auto& lp : layers_) {
    Layer& l = *lp;
    auto& p = l.p;
    l.x = x;
    l.q = linear_forward(x, p[Wq].value);
    l.k = linear_forward(x, p[Wk].value);
    l.v = linear_forward(x, p[Wv].value);
    if (l.Wb) {
      // mixer gdn (SPEC.md §6): q, k L2-normalised per head; beta = sigmoid(x Wb^T). SPEC.md §6's
      // q scale K^-1/2 and lam scale sqrt(K) cancel on every level, so neither is applied.
      l.q = l2norm_forward<Scalar>(l.q, l.qn, H);
      l.k = l2norm_forward<Scalar>(l.k, l.kn, H);
      l.beta = linear_forward(x, l.Wb->value).unaryExpr([](Scalar s) { return sigmoid(s); });
    }
    l.dl = linear_forward(x, p[Wdl].value);
    // g = phi(x Wdt^T) <= 0 per token and head (mamba2: -exp(A_log) softplus(x Wdt^T + dt_bias));
    // a data-independent decay reads only the shape of u.
    const RowMatrix<Scalar> u = l.Wdt ? linear_forward(x, l.Wdt->value) : RowMatrix<Scalar>::Zero(N, H);
    l.g = l.decay->forward(u, B);
    if (l.lam_override) {
      overridden_ = true;  // before the checks: a refused override still leaves nothing to backward
      l.apply_override(Index(&lp - layers_.data()), N, H * L);
    } else {
      l.lamv = l.lam->forward(l.dl);
    }
    l.o.resize(N, d);
    const TensorView<Scalar, 4> o_view{l.o.data(), {B, T, H, Dh}};
    if (l.Wb) gdn_forward<Scalar>(cfg_.form, l.gdn_inputs(B, T, H, Dh, L), opts, o_view);
    else loglinear::forward<Scalar>(cfg_.form, l.inputs(B, T, H, Dh, L), opts, o_view);
    // Post-norm residual: x = LayerNorm(out_proj(o) + x).
    x = layernorm_forward<Scalar>(linear_forward(l.o, p[Wo].value) + x, p[ln_g].value, p[ln_b].value, l.ln);
  }
  x_final_ = layernorm_forward<Scalar>(x, top_[lnf_g].value, top_[lnf_b].value, ln_final_);
  const RowMatrix<Scalar> logits = linear_forward(x_final_, top_[head].value);
  return cross_entropy<Scalar>(logits, batch.targets.data(), &dlogits_, correct);
}

template <class Scalar>
void TaskModel<Scalar>::backward() {
  if (dlogits_.size() == 0) throw std::logic_error("TaskModel::backward: expected a forward() first");
  bool override_set = overridden_;
  for (const auto& lp : layers_) override_set |= lp->lam_override.has_value();
  if (override_set)
    throw std::logic_error("TaskModel::backward: a lambda override is set or was used by the last forward; "
                           "overrides are forward-only (clear them with set_lambda_override(layer, std::nullopt) "
                           "and run forward again)");
  const Index B = B_, T = T_, N = B * T;
  const Index d = cfg_.d_model, H = cfg_.heads, Dh = d / H, L = cfg_.levels;
  const ChunkedOptions opts{cfg_.chunk};
  // forward: logits = x_final Wh^T, x_final = LayerNorm(x).
  RowMatrix<Scalar> dx = linear_backward(x_final_, top_[head].value, dlogits_, top_[head].grad);
  dlogits_.resize(0, 0);
  dx = layernorm_backward<Scalar>(dx, top_[lnf_g].value, ln_final_, top_[lnf_g].grad, top_[lnf_b].grad);
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    Layer& l = **it;
    auto& p = l.p;
    // forward: x_out = LN(o Wo^T + x_in): the residual passes dz to x_in unchanged.
    const RowMatrix<Scalar> dz = layernorm_backward<Scalar>(dx, p[ln_g].value, l.ln, p[ln_g].grad, p[ln_b].grad);
    dx = dz;
    const RowMatrix<Scalar> dout = linear_backward(l.o, p[Wo].value, dz, p[Wo].grad);
    // forward: o = LogLinearAttention(q, k, v, g, lam), or (gdn) GatedDeltaNet(q, k, v, g, beta, lam).
    RowMatrix<Scalar> dq(N, d), dk(N, d), dv(N, d), dg(N, H), dlam(N, H * L), dbeta;
    const AttentionGrads<Scalar> grads{{dq.data(), {B, T, H, Dh}}, {dk.data(), {B, T, H, Dh}},
                                       {dv.data(), {B, T, H, Dh}}, {dg.data(), {B, T, H}},
                                       {dlam.data(), {B, T, H, L}}};
    const ConstTensorView<Scalar, 4> dout_view{dout.data(), {B, T, H, Dh}};
    if (l.Wb) {
      dbeta.resize(N, H);
      gdn_backward<Scalar>(cfg_.form, l.gdn_inputs(B, T, H, Dh, L), opts, dout_view,
                           GdnGrads<Scalar>{grads, {dbeta.data(), {B, T, H}}});
      // forward: q, k = l2norm(x W^T) per head.
      dq = l2norm_backward<Scalar>(dq, l.qn);
      dk = l2norm_backward<Scalar>(dk, l.kn);
      // forward: beta = sigmoid(x Wb^T), sigmoid' = beta (1 - beta).
      const RowMatrix<Scalar> dbpre = dbeta.cwiseProduct(l.beta.cwiseProduct((Scalar(1) - l.beta.array()).matrix()));
      dx += linear_backward(l.x, l.Wb->value, dbpre, l.Wb->grad);
    } else {
      loglinear::backward<Scalar>(cfg_.form, l.inputs(B, T, H, Dh, L), opts, dout_view, grads);
    }
    // forward: g = phi(u; theta), u = x Wdt^T: the decay adds dtheta and returns du.
    const RowMatrix<Scalar> du = l.decay->backward(dg);
    // forward: lam = LevelWeights(dl).
    const RowMatrix<Scalar> ddl = l.lam->backward(dlam);
    // forward: q, k, v, dl, u = x W^T: every projection sends its gradient back to x.
    dx += linear_backward(l.x, p[Wq].value, dq, p[Wq].grad);
    dx += linear_backward(l.x, p[Wk].value, dk, p[Wk].grad);
    dx += linear_backward(l.x, p[Wv].value, dv, p[Wv].grad);
    dx += linear_backward(l.x, p[Wdl].value, ddl, p[Wdl].grad);
    if (l.Wdt) dx += linear_backward(l.x, l.Wdt->value, du, l.Wdt->grad);
  }
  decays_->backward();  // the shared decay parameters' gradients, from every layer's
  // forward: x = embedding[tokens].
  for (Index n = 0; n < N; ++n) top_[embedding].grad.row(tokens_[size_t(n)]) += dx.row(n);
}

template <class Scalar>
const typename TaskModel<Scalar>::Layer& TaskModel<Scalar>::layer_at(Index layer) const {
  if (layer < 0 || layer >= Index(layers_.size()))
    throw std::invalid_argument("layer: expected 0 <= layer < " + std::to_string(layers_.size()) + ", got " +
                                std::to_string(layer));
  return *layers_[size_t(layer)];
}

template <class Scalar>
const RowMatrix<Scalar>& TaskModel<Scalar>::last_decay(Index layer) const { return layer_at(layer).g; }

template <class Scalar>
lambda::LevelWeights<Scalar>& TaskModel<Scalar>::level_weights(Index layer) {
  return *layer_at(layer).lam;
}

template <class Scalar>
const RowMatrix<Scalar>& TaskModel<Scalar>::last_lambda(Index layer) const { return layer_at(layer).lamv; }

template <class Scalar>
void TaskModel<Scalar>::set_lambda_override(Index layer, std::optional<LambdaOverride<Scalar>> override_) {
  layer_at(layer);  // the range check
  layers_[size_t(layer)]->lam_override = std::move(override_);
}

template class TaskModel<float>;
template class TaskModel<double>;

}  // namespace loglinear::nn
