// Log-linear Mamba-2 mixer (SPEC.md §8), forward then backward. Every backward block names the
// forward line it differentiates; the operator's backward is attention/*.cpp, lambda's is
// lambda/<mode>.cpp, the conv's and the gated norm's are in this folder.
#include <loglinear/core/activations.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/init.hpp>
#include <loglinear/decay/decay.hpp>
#include <loglinear/nn/conv1d.hpp>
#include <loglinear/nn/linear.hpp>
#include <loglinear/nn/mamba2_mixer.hpp>

#include <cmath>
#include <random>
#include <stdexcept>

namespace loglinear::nn {
namespace {
enum P { in_proj, conv_w, conv_b, dt_bias, A_log, D, norm_w, out_proj };
}  // namespace

void check_mixer_config(const Mamba2MixerConfig& c) {
  const std::pair<const char*, Index> sizes[] = {{"d_model", c.d_model}, {"expand", c.expand},
                                                 {"heads", c.heads},     {"n_groups", c.n_groups},
                                                 {"d_state", c.d_state}, {"levels", c.levels},
                                                 {"conv_width", c.conv_width}, {"lambda_hidden", c.lambda_hidden},
                                                 {"chunk", c.chunk}};
  for (const auto& [name, v] : sizes)
    if (v < 1) throw std::invalid_argument(std::string(name) + ": expected >= 1, got " + std::to_string(v));
  if (c.heads % c.n_groups != 0)
    throw std::invalid_argument("n_groups: expected a divisor of heads = " + std::to_string(c.heads) + ", got " +
                                std::to_string(c.n_groups));
  if ((c.expand * c.d_model) % c.heads != 0)
    throw std::invalid_argument("heads: expected a divisor of d_inner = " + std::to_string(c.expand * c.d_model) +
                                ", got " + std::to_string(c.heads));
}

Index check_mixer_input(const Mamba2MixerConfig& c, Index rows, Index cols, Index B) {
  if (cols != c.d_model || B < 1 || rows % B != 0)
    throw std::invalid_argument("u: expected shape [B*T, d_model] with d_model = " + std::to_string(c.d_model) +
                                " and rows divisible by B = " + std::to_string(B) + ", got [" +
                                std::to_string(rows) + "," + std::to_string(cols) + "]");
  const Index T = rows / B;
  if (num_levels(T) > c.levels)
    throw std::invalid_argument("levels: expected >= num_levels(T) = " + std::to_string(num_levels(T)) +
                                " for T = " + std::to_string(T) + ", got " + std::to_string(c.levels));
  return T;
}

template <class Scalar>
Mamba2Mixer<Scalar>::Mamba2Mixer(const Mamba2MixerConfig& cfg, std::uint64_t seed, const std::string& prefix)
    : cfg_((check_mixer_config(cfg), cfg)),
      d_inner_(cfg.expand * cfg.d_model),
      conv_dim_(d_inner_ + 2 * cfg.n_groups * cfg.d_state),
      V_(d_inner_ / cfg.heads),
      lam_([&] {
        // lambda draws from its own generator, so the mixer's draws below do not depend on the mode.
        std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
        return lambda::make_level_weights<Scalar>(cfg.lambda, {cfg.heads, cfg.levels, cfg.lambda_hidden,
                                                               prefix + "lambda."}, rng);
      }()) {
  const Index H = cfg.heads, L = cfg.levels, d = cfg.d_model;
  std::mt19937_64 rng(seed);
  using M = RowMatrix<Scalar>;
  p_.emplace_back(prefix + "in_proj", init_normal<Scalar>(d_inner_ + conv_dim_ + H + H * L, d, 0.02, rng));
  p_.emplace_back(prefix + "conv_w", init_normal<Scalar>(conv_dim_, cfg.conv_width, 0.02, rng));
  p_.emplace_back(prefix + "conv_b", M::Zero(1, conv_dim_), false);
  M alog(1, H);
  for (Index h = 0; h < H; ++h) alog(0, h) = Scalar(std::log(double(h + 1)));
  p_.emplace_back(prefix + "dt_bias", decay::mamba2_dt_bias_init<Scalar>(H, rng), false);
  p_.emplace_back(prefix + "A_log", alog, false);
  p_.emplace_back(prefix + "D", M::Ones(1, H), false);
  p_.emplace_back(prefix + "norm_w", M::Ones(1, d_inner_), false);
  p_.emplace_back(prefix + "out_proj", init_normal<Scalar>(d, d_inner_, 0.02, rng));
}

template <class Scalar>
std::vector<Param<Scalar>*> Mamba2Mixer<Scalar>::params() {
  std::vector<Param<Scalar>*> out;
  for (auto& p : p_) out.push_back(&p);
  for (auto* p : lam_->params()) out.push_back(p);
  return out;
}

template <class Scalar>
RowMatrix<Scalar> Mamba2Mixer<Scalar>::forward(const RowMatrix<Scalar>& u, Index B) {
  const Index H = cfg_.heads, L = cfg_.levels, G = cfg_.n_groups, K = cfg_.d_state;
  const Index N = u.rows(), T = check_mixer_input(cfg_, u.rows(), u.cols(), B);
  B_ = B;
  T_ = T;
  u_ = u;
  // [z | xBC | dt_raw | dl] = in_proj(u), in this order.
  const RowMatrix<Scalar> zxbcdt = linear_forward(u, p_[in_proj].value);
  z_ = zxbcdt.leftCols(d_inner_);
  xbc_raw_ = zxbcdt.middleCols(d_inner_, conv_dim_);
  const RowMatrix<Scalar> dt_raw = zxbcdt.middleCols(d_inner_ + conv_dim_, H);
  const RowMatrix<Scalar> dl = zxbcdt.rightCols(H * L);
  xbc_pre_ = conv1d_forward(xbc_raw_, B, p_[conv_w].value, p_[conv_b].value);
  xbc_ = silu_forward(xbc_pre_);
  // [x | Bm | Cm] = xBC; v = x * dt per head, g = A dt with A = -exp(A_log).
  dt_pre_ = dt_raw.rowwise() + p_[dt_bias].value.row(0);
  dt_ = dt_pre_.unaryExpr([](Scalar s) { return softplus(s); });
  g_.resize(N, H);
  v_.resize(N, d_inner_);
  for (Index h = 0; h < H; ++h) {
    g_.col(h) = -std::exp(p_[A_log].value(0, h)) * dt_.col(h);
    v_.middleCols(h * V_, V_) = xbc_.middleCols(h * V_, V_).array().colwise() * dt_.col(h).array();
  }
  lamv_ = lam_->forward(dl);
  const RowMatrix<Scalar> k = xbc_.middleCols(d_inner_, G * K), q = xbc_.middleCols(d_inner_ + G * K, G * K);
  o_.resize(N, d_inner_);
  const AttentionInputs<Scalar> in{{q.data(), {B, T, G, K}}, {k.data(), {B, T, G, K}},
                                   {v_.data(), {B, T, H, V_}}, {g_.data(), {B, T, H}},
                                   {lamv_.data(), {B, T, H, L}}};
  loglinear::forward<Scalar>(cfg_.form, in, ChunkedOptions{cfg_.chunk}, TensorView<Scalar, 4>{o_.data(), {B, T, H, V_}});
  // y = o + D x (the skip reads x before the dt scaling); gated norm per group; out_proj.
  y_ = o_;
  for (Index h = 0; h < H; ++h) y_.middleCols(h * V_, V_) += p_[D].value(0, h) * xbc_.middleCols(h * V_, V_);
  yn_ = gated_rmsnorm_forward<Scalar>(y_, z_, p_[norm_w].value, norm_, G);
  return linear_forward(yn_, p_[out_proj].value);
}

template <class Scalar>
RowMatrix<Scalar> Mamba2Mixer<Scalar>::backward(const RowMatrix<Scalar>& dout) {
  const Index H = cfg_.heads, L = cfg_.levels, G = cfg_.n_groups, K = cfg_.d_state, B = B_, T = T_, N = B * T;
  if (dout.rows() != N || dout.cols() != cfg_.d_model)
    throw std::invalid_argument("dout: expected the forward's shape [" + std::to_string(N) + "," +
                                std::to_string(cfg_.d_model) + "], got [" + std::to_string(dout.rows()) + "," +
                                std::to_string(dout.cols()) + "]");
  // forward: out = yn out_proj^T; yn = gated_rmsnorm(y, z).
  const RowMatrix<Scalar> dyn = linear_backward(yn_, p_[out_proj].value, dout, p_[out_proj].grad);
  RowMatrix<Scalar> dy, dz;
  gated_rmsnorm_backward<Scalar>(dyn, p_[norm_w].value, norm_, p_[norm_w].grad, dy, dz);
  // forward: y = o + D x, hence do = dy, dx += D dy, dD += <dy, x> per head.
  RowMatrix<Scalar> dxbc = RowMatrix<Scalar>::Zero(N, conv_dim_);
  for (Index h = 0; h < H; ++h) {
    dxbc.middleCols(h * V_, V_) = p_[D].value(0, h) * dy.middleCols(h * V_, V_);
    p_[D].grad(0, h) += dy.middleCols(h * V_, V_).cwiseProduct(xbc_.middleCols(h * V_, V_)).sum();
  }
  // forward: o = LogLinearAttention(q = Cm, k = Bm, v, g, lam); the operator overwrites its grads.
  const RowMatrix<Scalar> k = xbc_.middleCols(d_inner_, G * K), q = xbc_.middleCols(d_inner_ + G * K, G * K);
  RowMatrix<Scalar> dq(N, G * K), dk(N, G * K), dv(N, d_inner_), dg(N, H), dlam(N, H * L);
  const AttentionInputs<Scalar> in{{q.data(), {B, T, G, K}}, {k.data(), {B, T, G, K}},
                                   {v_.data(), {B, T, H, V_}}, {g_.data(), {B, T, H}},
                                   {lamv_.data(), {B, T, H, L}}};
  const AttentionGrads<Scalar> grads{{dq.data(), {B, T, G, K}}, {dk.data(), {B, T, G, K}},
                                     {dv.data(), {B, T, H, V_}}, {dg.data(), {B, T, H}},
                                     {dlam.data(), {B, T, H, L}}};
  loglinear::backward<Scalar>(cfg_.form, in, ChunkedOptions{cfg_.chunk},
                              ConstTensorView<Scalar, 4>{dy.data(), {B, T, H, V_}}, grads);
  dxbc.middleCols(d_inner_, G * K) = dk;
  dxbc.middleCols(d_inner_ + G * K, G * K) = dq;
  // forward: v = x dt and g = -exp(A_log) dt, hence dx += dv dt, ddt = <dv, x> + dg A, dA_log += dg g.
  RowMatrix<Scalar> ddt_raw(N, H);
  for (Index h = 0; h < H; ++h) {
    const auto dv_h = dv.middleCols(h * V_, V_);
    dxbc.middleCols(h * V_, V_) += (dv_h.array().colwise() * dt_.col(h).array()).matrix();
    const Vector<Scalar> ddt = dv_h.cwiseProduct(xbc_.middleCols(h * V_, V_)).rowwise().sum() -
                               std::exp(p_[A_log].value(0, h)) * dg.col(h);
    p_[A_log].grad(0, h) += dg.col(h).dot(g_.col(h));
    // forward: dt = softplus(dt_raw + dt_bias), softplus' = sigmoid.
    ddt_raw.col(h) = ddt.cwiseProduct(dt_pre_.col(h).unaryExpr([](Scalar s) { return sigmoid(s); }));
  }
  p_[dt_bias].grad.row(0) += ddt_raw.colwise().sum();
  // forward: xBC = SiLU(conv1d(xBC_raw)); lam = LevelWeights(dl).
  const RowMatrix<Scalar> dxbc_raw =
      conv1d_backward(xbc_raw_, B, p_[conv_w].value, silu_backward(xbc_pre_, dxbc), p_[conv_w].grad, p_[conv_b].grad);
  const RowMatrix<Scalar> ddl = lam_->backward(dlam);
  // forward: [z | xBC | dt_raw | dl] = u in_proj^T.
  RowMatrix<Scalar> dzxbcdt(N, p_[in_proj].value.rows());
  dzxbcdt << dz, dxbc_raw, ddt_raw, ddl;
  return linear_backward(u_, p_[in_proj].value, dzxbcdt, p_[in_proj].grad);
}

template class Mamba2Mixer<float>;
template class Mamba2Mixer<double>;

}  // namespace loglinear::nn
