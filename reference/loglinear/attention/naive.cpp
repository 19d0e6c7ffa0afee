// Naive masked form, O(T^2) per head (SPEC.md §3) and its backward (§3.1, docs/backward.md
// eqs. 1-9). Readable by design: build W, form M = (Q K^T) ⊙ W, multiply by V.
// The recurrent and chunked forms (recurrent.cpp, chunked.cpp) are tested against this file.
#include <loglinear/attention/naive.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/parallel.hpp>

#include <cmath>

namespace loglinear {

namespace detail {

template <class Scalar>
RowMatrix<Scalar> decay_mask_unchecked(const ConstVectorMap<Scalar>& g, const ConstMatrixMap<Scalar>& lam) {
  const Index T = g.size();
  RowMatrix<Scalar> W = RowMatrix<Scalar>::Zero(T, T);
  for (Index t = 0; t < T; ++t) {
    // log_decay = sum_{r=s+1..t} g_r, grown from the diagonal outwards (SPEC.md §10): every
    // partial sum is <= 0, so exp never overflows and a masked entry is never touched.
    Scalar log_decay = 0;
    for (Index s = t; s >= 0; --s) {
      W(t, s) = lam(t, level(t, s)) * std::exp(log_decay);
      log_decay += g(s);
    }
  }
  return W;
}

}  // namespace detail

namespace {
template <class Scalar>
RowMatrix<Scalar> mask_of(const ConstVectorMap<Scalar>& g, const ConstMatrixMap<Scalar>& lam) {
  return detail::decay_mask_unchecked(g, lam);
}
}  // namespace

template <class Scalar>
RowMatrix<Scalar> decay_mask(const ConstVectorMap<Scalar>& g, const ConstMatrixMap<Scalar>& lam) {
  const Index T = g.size();
  // The public entry point validates; the naive form calls mask_of on inputs it checked once.
  if (T < 1) throw std::invalid_argument("g: expected T >= 1 tokens, got T = " + std::to_string(T));
  if (lam.rows() != T || lam.cols() < num_levels(T)) {
    throw std::invalid_argument("lam: expected shape [T,L] = [" + std::to_string(T) +
                                ",L] with L >= num_levels(" + std::to_string(T) + ") = " +
                                std::to_string(num_levels(T)) + ", got [" +
                                std::to_string(lam.rows()) + "," + std::to_string(lam.cols()) + "]");
  }
  check_allocation("g: the T x T decay mask (T = " + std::to_string(T) + ")",
                   checked_product("g: T x T", {T, T}), sizeof(Scalar));
  for (Index t = 0; t < T; ++t) {
    if (!std::isfinite(g(t)) || g(t) > 0) {
      throw std::invalid_argument(std::string("g: expected ") +
                                  (std::isfinite(g(t)) ? "log-decay values <= 0" : "finite values") +
                                  ", got " + std::to_string(g(t)) + " at index " + std::to_string(t));
    }
    for (Index l = 0; l < lam.cols(); ++l) {
      if (!std::isfinite(lam(t, l))) {
        throw std::invalid_argument("lam: expected finite values, got " + std::to_string(lam(t, l)) +
                                    " at [" + std::to_string(t) + "," + std::to_string(l) + "]");
      }
    }
  }
  return mask_of(g, lam);
}

namespace {

// Refuses, before allocating, `count` T x T matrices per head in flight that cannot fit.
template <class Scalar>
void check_mask_fits(const AttentionDims& d, Index count) {
  check_allocation("q: the naive form's " + std::to_string(count) + " T x T matrices of one head (T = " +
                       std::to_string(d.T) + ")",
                   checked_product("q: T x T", {count, d.T, d.T}), sizeof(Scalar));
}

// One (batch, head) of the forward: o_bh = ((q_bh k_bh^T) ⊙ W) v_bh.
template <class Scalar>
void naive_forward_head(const AttentionInputs<Scalar>& in, const AttentionDims& d, Index b,
                        Index h, TensorView<Scalar, 4> o) {
  const auto q = slice_bt(in.q, b, d.group_of(h));
  const auto k = slice_bt(in.k, b, d.group_of(h));
  // S, W and M as in SPEC.md §3; S is formed first so that Eigen runs it as one GEMM.
  RowMatrix<Scalar> M = q * k.transpose();
  M.array() *= mask_of(slice_bt(in.g, b, h), slice_bt(in.lam, b, h)).array();
  slice_bt(o, b, h).noalias() = M * slice_bt(in.v, b, h);
}

// One (batch, head) of the backward; adds this head's share of dq, dk into dq_bh, dk_bh (its own
// [T,K] slices, see for_each_head_shared_qk) and overwrites dv, dg, dlam of this head. Equation
// numbers refer to docs/backward.md.
template <class Scalar>
void naive_backward_head(const AttentionInputs<Scalar>& in, const AttentionDims& d, Index b,
                         Index h, ConstTensorView<Scalar, 4> dout_all,
                         const AttentionGrads<Scalar>& gr, MatrixMap<Scalar> dq_bh,
                         MatrixMap<Scalar> dk_bh) {
  const Index T = d.T, gi = d.group_of(h);
  const auto q = slice_bt(in.q, b, gi);
  const auto k = slice_bt(in.k, b, gi);
  const auto v = slice_bt(in.v, b, h);
  const auto lam = slice_bt(in.lam, b, h);
  const auto dout = slice_bt(dout_all, b, h);

  const RowMatrix<Scalar> S = q * k.transpose();
  const RowMatrix<Scalar> W = mask_of(slice_bt(in.g, b, h), lam);
  const RowMatrix<Scalar> M = S.cwiseProduct(W);

  // (1) forward o = M v, hence dM = dout v^T (only s <= t matters: W is zero above).
  const RowMatrix<Scalar> dM = (dout * v.transpose()).template triangularView<Eigen::Lower>();
  // (2) dv = M^T dout.
  slice_bt(gr.dv, b, h).noalias() = M.transpose() * dout;
  // (3) M = S ⊙ W, hence dS = dM ⊙ W; (4) S = q k^T, hence dq = dS k and dk = dS^T q.
  const RowMatrix<Scalar> dS = dM.cwiseProduct(W);
  dq_bh.noalias() += dS * k;
  dk_bh.noalias() += dS.transpose() * q;

  // (5) W_ts = lam_t[ell] D_ts, hence dlam_t[l] = sum_{s: ell(t,s)=l} S_ts D_ts dM_ts, where
  // S_ts D_ts dM_ts = M_ts dM_ts / lam_t[ell] is recomputed as P_ts / lam unless lam is zero.
  const RowMatrix<Scalar> P = M.cwiseProduct(dM);  // (6) P = M ⊙ dM
  auto dlam = slice_bt(gr.dlam, b, h);
  dlam.setZero();
  const auto g = slice_bt(in.g, b, h);
  for (Index t = 0; t < T; ++t) {
    Scalar log_decay = 0;
    for (Index s = t; s >= 0; --s) {
      dlam(t, level(t, s)) += S(t, s) * std::exp(log_decay) * dM(t, s);
      log_decay += g(s);
    }
  }
  // (7) dgcum_t = rowsum_t(P) - colsum_t(P): gcum_t (SPEC's G_t) enters W_t* with + and W_*t
  //     with -.
  // (8) g_t enters every gcum_u with u >= t, hence dg_t = sum_{u >= t} dgcum_u (g_0 cancels:
  //     dg_0 = 0).
  const Vector<Scalar> dgcum = P.rowwise().sum() - P.colwise().sum().transpose();
  auto dg = slice_bt(gr.dg, b, h);
  Scalar acc = 0;
  for (Index t = T - 1; t >= 0; --t) {
    acc += dgcum(t);
    dg(t) = acc;
  }
  // dg_0 is exactly zero in exact arithmetic; the sum above leaves rounding noise, so state it.
  dg(0) = 0;
}

}  // namespace

template <class Scalar>
void naive_forward(const AttentionInputs<Scalar>& in, TensorView<Scalar, 4> o) {
  const AttentionDims d = check_inputs(in);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_mask_fits<Scalar>(d, 2);  // M and W
  for_each_head(d, [&](Index b, Index h) { naive_forward_head(in, d, b, h, o); });
}

template <class Scalar>
void naive_backward(const AttentionInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                    const AttentionGrads<Scalar>& grads) {
  const AttentionDims d = check_inputs(in);
  check_shape<4>("dout", dout.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_finite<Scalar, 4>("dout", dout);
  check_grads(grads, d);
  check_mask_fits<Scalar>(d, 6);  // S, W, M, dM, dS, P
  std::fill(grads.dq.data, grads.dq.data + grads.dq.size(), Scalar(0));
  std::fill(grads.dk.data, grads.dk.data + grads.dk.size(), Scalar(0));
  std::fill(grads.dlam.data, grads.dlam.data + grads.dlam.size(), Scalar(0));
  for_each_head_shared_qk<Scalar>(
      d, grads.dq, grads.dk, [&](Index b, Index h, MatrixMap<Scalar> dq_bh, MatrixMap<Scalar> dk_bh) {
        naive_backward_head(in, d, b, h, dout, grads, dq_bh, dk_bh);
      });
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                          \
  template RowMatrix<Scalar> decay_mask<Scalar>(const ConstVectorMap<Scalar>&,                 \
                                                const ConstMatrixMap<Scalar>&);                \
  template RowMatrix<Scalar> detail::decay_mask_unchecked<Scalar>(const ConstVectorMap<Scalar>&, \
                                                                  const ConstMatrixMap<Scalar>&); \
  template void naive_forward<Scalar>(const AttentionInputs<Scalar>&, TensorView<Scalar, 4>);  \
  template void naive_backward<Scalar>(const AttentionInputs<Scalar>&,                         \
                                       ConstTensorView<Scalar, 4>, const AttentionGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
