// Log-linear Gated DeltaNet mixer (gdn_mixer.hpp, SPEC.md §6), forward then backward. Every
// backward block names the forward line it differentiates; the operator's backward is
// attention/gdn_*.cpp, lambda's lambda/<mode>.cpp, the conv's, the norms' and the linear layer's
// are in this folder.
#include <loglinear/attention/gdn_forms.hpp>
#include <loglinear/core/activations.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/init.hpp>
#include <loglinear/decay/decay.hpp>
#include <loglinear/nn/conv1d.hpp>
#include <loglinear/nn/gdn_mixer.hpp>
#include <loglinear/nn/linear.hpp>

#include <cmath>
#include <random>
#include <stdexcept>

namespace loglinear::nn {
namespace {
enum P { in_proj, conv_w, dt_bias, A_log, norm_w, out_proj };
}  // namespace

template <class Scalar>
GdnMixer<Scalar>::GdnMixer(const GdnMixerConfig& cfg, std::uint64_t seed, const std::string& prefix)
    : cfg_((check_mixer_config(cfg), cfg)),
      d_inner_(cfg.expand * cfg.d_model),
      gk_(cfg.n_groups * cfg.d_state),
      conv_dim_(2 * gk_ + d_inner_),
      V_(d_inner_ / cfg.heads),
      lam_([&] {
        // lambda draws from its own generator (as in the Mamba-2 mixer), so the draws below do
        // not depend on the mode.
        std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
        return lambda::make_level_weights<Scalar>(cfg.lambda, {cfg.heads, cfg.levels, cfg.lambda_hidden,
                                                               prefix + "lambda."}, rng);
      }()) {
  const Index H = cfg.heads, L = cfg.levels, d = cfg.d_model;
  std::mt19937_64 rng(seed);
  using M = RowMatrix<Scalar>;
  p_.emplace_back(prefix + "in_proj", init_normal<Scalar>(conv_dim_ + d_inner_ + 2 * H + H * L, d, 0.02, rng));
  p_.emplace_back(prefix + "conv_w", init_normal<Scalar>(conv_dim_, cfg.conv_width, 0.02, rng));
  M alog(1, H);
  for (Index h = 0; h < H; ++h) alog(0, h) = Scalar(std::log(double(h + 1)));
  p_.emplace_back(prefix + "dt_bias", decay::mamba2_dt_bias_init<Scalar>(H, rng), false);
  p_.emplace_back(prefix + "A_log", alog, false);
  p_.emplace_back(prefix + "norm_w", M::Ones(1, d_inner_), false);
  p_.emplace_back(prefix + "out_proj", init_normal<Scalar>(d, d_inner_, 0.02, rng));
  conv_b_zero_ = M::Zero(1, conv_dim_);
  conv_b_grad_ = M::Zero(1, conv_dim_);
}

template <class Scalar>
std::vector<Param<Scalar>*> GdnMixer<Scalar>::params() {
  std::vector<Param<Scalar>*> out;
  for (auto& p : p_) out.push_back(&p);
  for (auto* p : lam_->params()) out.push_back(p);
  return out;
}

template <class Scalar>
RowMatrix<Scalar> GdnMixer<Scalar>::forward(const RowMatrix<Scalar>& u, Index B) {
  const Index H = cfg_.heads, L = cfg_.levels, G = cfg_.n_groups, K = cfg_.d_state;
  const Index N = u.rows(), T = check_mixer_input(cfg_, u.rows(), u.cols(), B);
  B_ = B;
  T_ = T;
  u_ = u;
  // [q | k | v | z | a | b | dl] = in_proj(u), in this order.
  const RowMatrix<Scalar> proj = linear_forward(u, p_[in_proj].value);
  qkv_raw_ = proj.leftCols(conv_dim_);
  z_ = proj.middleCols(conv_dim_, d_inner_);
  const RowMatrix<Scalar> a = proj.middleCols(conv_dim_ + d_inner_, H);
  b_pre_ = proj.middleCols(conv_dim_ + d_inner_ + H, H);
  const RowMatrix<Scalar> dl = proj.rightCols(H * L);
  // [q | k | v] = SiLU(conv1d(.)), no conv bias; q and k L2-normalised per group of K.
  qkv_pre_ = conv1d_forward(qkv_raw_, B, p_[conv_w].value, conv_b_zero_);
  const RowMatrix<Scalar> qkv = silu_forward(qkv_pre_);
  q_ = l2norm_forward<Scalar>(qkv.leftCols(gk_), qn_, G);
  k_ = l2norm_forward<Scalar>(qkv.middleCols(gk_, gk_), kn_, G);
  v_ = qkv.rightCols(d_inner_);
  // beta = sigmoid(b); g = -exp(A_log) softplus(a + dt_bias); lam = LevelWeights(dl).
  beta_ = b_pre_.unaryExpr([](Scalar s) { return sigmoid(s); });
  dt_pre_ = a.rowwise() + p_[dt_bias].value.row(0);
  g_.resize(N, H);
  for (Index h = 0; h < H; ++h)
    g_.col(h) = -std::exp(p_[A_log].value(0, h)) * dt_pre_.col(h).unaryExpr([](Scalar s) { return softplus(s); });
  lamv_ = lam_->forward(dl);
  // o = GatedDeltaNet(q, k, v, g, beta, lam).
  o_.resize(N, d_inner_);
  const GdnInputs<Scalar> in{{{q_.data(), {B, T, G, K}}, {k_.data(), {B, T, G, K}}, {v_.data(), {B, T, H, V_}},
                              {g_.data(), {B, T, H}}, {lamv_.data(), {B, T, H, L}}},
                             {beta_.data(), {B, T, H}}};
  gdn_forward<Scalar>(cfg_.form, in, ChunkedOptions{cfg_.chunk}, TensorView<Scalar, 4>{o_.data(), {B, T, H, V_}});
  // y = RMSNorm_per_head(o) * norm_w ⊙ SiLU(z); out = y out_proj^T.
  on_ = rmsnorm_forward<Scalar>(o_, p_[norm_w].value, norm_, H);
  const RowMatrix<Scalar> y = on_.cwiseProduct(silu_forward(z_));
  return linear_forward(y, p_[out_proj].value);
}

template <class Scalar>
RowMatrix<Scalar> GdnMixer<Scalar>::backward(const RowMatrix<Scalar>& dout) {
  const Index H = cfg_.heads, L = cfg_.levels, G = cfg_.n_groups, K = cfg_.d_state, B = B_, T = T_, N = B * T;
  if (dout.rows() != N || dout.cols() != cfg_.d_model)
    throw std::invalid_argument("dout: expected the forward's shape [" + std::to_string(N) + "," +
                                std::to_string(cfg_.d_model) + "], got [" + std::to_string(dout.rows()) + "," +
                                std::to_string(dout.cols()) + "]");
  // forward: out = y out_proj^T, y = on ⊙ SiLU(z), on = RMSNorm_per_head(o) * norm_w.
  const RowMatrix<Scalar> y = on_.cwiseProduct(silu_forward(z_));
  const RowMatrix<Scalar> dy = linear_backward(y, p_[out_proj].value, dout, p_[out_proj].grad);
  const RowMatrix<Scalar> dz = silu_backward(z_, RowMatrix<Scalar>(dy.cwiseProduct(on_)));
  const RowMatrix<Scalar> don = dy.cwiseProduct(silu_forward(z_));
  const RowMatrix<Scalar> d_o = rmsnorm_backward<Scalar>(don, p_[norm_w].value, norm_, p_[norm_w].grad);
  // forward: o = GatedDeltaNet(q, k, v, g, beta, lam); the operator overwrites its grads.
  RowMatrix<Scalar> dq(N, gk_), dk(N, gk_), dv(N, d_inner_), dg(N, H), dbeta(N, H), dlam(N, H * L);
  const GdnInputs<Scalar> in{{{q_.data(), {B, T, G, K}}, {k_.data(), {B, T, G, K}}, {v_.data(), {B, T, H, V_}},
                              {g_.data(), {B, T, H}}, {lamv_.data(), {B, T, H, L}}},
                             {beta_.data(), {B, T, H}}};
  const GdnGrads<Scalar> grads{{{dq.data(), {B, T, G, K}}, {dk.data(), {B, T, G, K}}, {dv.data(), {B, T, H, V_}},
                                {dg.data(), {B, T, H}}, {dlam.data(), {B, T, H, L}}},
                               {dbeta.data(), {B, T, H}}};
  gdn_backward<Scalar>(cfg_.form, in, ChunkedOptions{cfg_.chunk}, ConstTensorView<Scalar, 4>{d_o.data(), {B, T, H, V_}},
                       grads);
  // forward: beta = sigmoid(b), sigmoid' = beta (1 - beta).
  const RowMatrix<Scalar> db = dbeta.cwiseProduct(beta_.cwiseProduct((Scalar(1) - beta_.array()).matrix()));
  // forward: g = -exp(A_log) softplus(a + dt_bias), softplus' = sigmoid; dA_log += <dg, g>.
  RowMatrix<Scalar> da(N, H);
  for (Index h = 0; h < H; ++h) {
    p_[A_log].grad(0, h) += dg.col(h).dot(g_.col(h));
    da.col(h) = (-std::exp(p_[A_log].value(0, h)) * dg.col(h))
                    .cwiseProduct(dt_pre_.col(h).unaryExpr([](Scalar s) { return sigmoid(s); }));
  }
  p_[dt_bias].grad.row(0) += da.colwise().sum();
  // forward: q, k = l2norm(.), [q | k | v] = SiLU(conv1d([q | k | v]_raw)).
  RowMatrix<Scalar> dqkv(N, conv_dim_);
  dqkv << l2norm_backward<Scalar>(dq, qn_), l2norm_backward<Scalar>(dk, kn_), dv;
  conv_b_grad_.setZero();  // the conv has no bias: its gradient is computed and dropped
  const RowMatrix<Scalar> dqkv_raw =
      conv1d_backward(qkv_raw_, B, p_[conv_w].value, silu_backward(qkv_pre_, dqkv), p_[conv_w].grad, conv_b_grad_);
  // forward: lam = LevelWeights(dl).
  const RowMatrix<Scalar> ddl = lam_->backward(dlam);
  // forward: [q | k | v | z | a | b | dl] = u in_proj^T.
  RowMatrix<Scalar> dproj(N, p_[in_proj].value.rows());
  dproj << dqkv_raw, dz, da, db, ddl;
  return linear_backward(u_, p_[in_proj].value, dproj, p_[in_proj].grad);
}

template class GdnMixer<float>;
template class GdnMixer<double>;

}  // namespace loglinear::nn
