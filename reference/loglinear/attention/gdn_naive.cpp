// Naive (materialised) form of log-linear Gated DeltaNet, SPEC.md §6, and its handwritten
// backward (docs/backward.md §4, eqs. 19-24). Readable by design: build Akk, invert I + Akk by
// forward substitution, form M = [tril(Q K^T) Tut] ⊙ W, multiply by diag(beta) v. The recurrent
// form (gdn_recurrent.cpp) is tested against this file.
#include <loglinear/attention/gdn_naive.hpp>
#include <loglinear/attention/naive.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/gdn_checks.hpp>
#include <loglinear/core/parallel.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace loglinear {

template <class Scalar>
RowMatrix<Scalar> unit_lower_inverse(const RowMatrix<Scalar>& A) {
  // The forms call this with shapes they built (never throwing inside their OpenMP regions);
  // the check is for outside callers, where a wrong shape would read out of bounds in Release.
  if (A.rows() != A.cols())
    throw std::invalid_argument("A: expected a square [T, T] matrix, got [" + std::to_string(A.rows()) + ", " +
                                std::to_string(A.cols()) + "]");
  const Index T = A.rows();
  RowMatrix<Scalar> Tut = RowMatrix<Scalar>::Identity(T, T);
  // (I + A) Tut = I, row t: Tut_t + sum_{s<t} A_ts Tut_s = e_t. Rows s < t are final when row t
  // is formed, and row s is zero past column s, so only its first s + 1 entries are touched.
  for (Index t = 1; t < T; ++t)
    for (Index s = 0; s < t; ++s) Tut.row(t).head(s + 1) -= A(t, s) * Tut.row(s).head(s + 1);
  return Tut;
}

template <class Scalar>
RowMatrix<Scalar> unit_lower_inverse_backward(const RowMatrix<Scalar>& Tut,
                                              const RowMatrix<Scalar>& dTut) {
  if (Tut.rows() != Tut.cols() || dTut.rows() != Tut.rows() || dTut.cols() != Tut.cols())
    throw std::invalid_argument("Tut, dTut: expected two [T, T] matrices of one size, got [" +
                                std::to_string(Tut.rows()) + ", " + std::to_string(Tut.cols()) + "] and [" +
                                std::to_string(dTut.rows()) + ", " + std::to_string(dTut.cols()) + "]");
  // eq. 23. Tut = X^{-1} with X = I + A, so X Tut = I and dX Tut + X dTut' = 0 for a change dX:
  // dTut' = -Tut dX Tut. The loss moves by <dTut, dTut'> = <-Tut^T dTut Tut^T, dX>, hence
  // dX = -Tut^T dTut Tut^T; only the strictly lower entries of X = I + A are free.
  // Tut's upper triangle is structurally zero, so only the lower triangle of dTut is read; the
  // two products are then triangular times triangular.
  const RowMatrix<Scalar> lower = dTut.template triangularView<Eigen::Lower>();
  const RowMatrix<Scalar> left = Tut.transpose().template triangularView<Eigen::Upper>() * lower;
  RowMatrix<Scalar> dX = -(left * Tut.transpose().template triangularView<Eigen::Upper>());
  return dX.template triangularView<Eigen::StrictlyLower>();
}

namespace {

// Akk_ts = beta_t (k_t . k_s) for t > s, zero on and above the diagonal (SPEC.md §6).
template <class Scalar, class KMat, class BetaVec>
RowMatrix<Scalar> akk_of(const KMat& k, const BetaVec& beta) {
  RowMatrix<Scalar> A = (k * k.transpose()).template triangularView<Eigen::StrictlyLower>();
  return beta.asDiagonal() * A;
}

// Refuses, before allocating, `count` T x T matrices per head in flight that cannot fit.
template <class Scalar>
void check_gdn_mask_fits(const AttentionDims& d, Index count) {
  check_allocation("q: the Gated DeltaNet naive form's " + std::to_string(count) +
                       " T x T matrices of one head (T = " + std::to_string(d.T) + ")",
                   checked_product("q: T x T", {count, d.T, d.T}), sizeof(Scalar));
}

// One (batch, head) of the forward: o = ([tril(q k^T) Tut] ⊙ W) diag(beta) v.
template <class Scalar>
void gdn_naive_forward_head(const GdnInputs<Scalar>& in, const AttentionDims& d, Index b, Index h,
                            TensorView<Scalar, 4> o) {
  const auto q = slice_bt(in.q, b, d.group_of(h));
  const auto k = slice_bt(in.k, b, d.group_of(h));
  const auto beta = slice_bt(in.beta, b, h);
  const RowMatrix<Scalar> Tut = unit_lower_inverse<Scalar>(akk_of<Scalar>(k, beta));
  // R_ts = q_t^T (I - beta_t k_t k_t^T) ... (I - beta_{s+1} k_{s+1} k_{s+1}^T) k_s for s <= t:
  // the Mamba-2 score q_t . k_s with every later erase applied to the key (SPEC.md §6).
  const RowMatrix<Scalar> S = (q * k.transpose()).template triangularView<Eigen::Lower>();
  RowMatrix<Scalar> M = S * Tut;
  M.array() *= detail::decay_mask_unchecked(slice_bt(in.g, b, h), slice_bt(in.lam, b, h)).array();
  slice_bt(o, b, h).noalias() = M * (beta.asDiagonal() * slice_bt(in.v, b, h));
}

// One (batch, head) of the backward; adds this head's share of dq, dk into dq_bh, dk_bh and
// overwrites dv, dg, dbeta, dlam of this head. Equation numbers refer to docs/backward.md §4.
template <class Scalar>
void gdn_naive_backward_head(const GdnInputs<Scalar>& in, const AttentionDims& d, Index b, Index h,
                             ConstTensorView<Scalar, 4> dout_all, const GdnGrads<Scalar>& gr,
                             MatrixMap<Scalar> dq_bh, MatrixMap<Scalar> dk_bh) {
  const Index T = d.T, gi = d.group_of(h);
  const auto q = slice_bt(in.q, b, gi);
  const auto k = slice_bt(in.k, b, gi);
  const auto v = slice_bt(in.v, b, h);
  const auto g = slice_bt(in.g, b, h);
  const auto beta = slice_bt(in.beta, b, h);
  const auto lam = slice_bt(in.lam, b, h);
  const auto dout = slice_bt(dout_all, b, h);
  auto dv = slice_bt(gr.dv, b, h);
  auto dbeta = slice_bt(gr.dbeta, b, h);

  // Forward, recomputed: Tut, S = tril(q k^T), R = S Tut, W, M = R ⊙ W, vb = diag(beta) v.
  const RowMatrix<Scalar> Tut = unit_lower_inverse<Scalar>(akk_of<Scalar>(k, beta));
  const RowMatrix<Scalar> S = (q * k.transpose()).template triangularView<Eigen::Lower>();
  const RowMatrix<Scalar> R = S * Tut;
  const RowMatrix<Scalar> W = detail::decay_mask_unchecked(g, lam);
  const RowMatrix<Scalar> M = R.cwiseProduct(W);
  const RowMatrix<Scalar> vb = beta.asDiagonal() * v;

  // (19) o = M vb: dM = dout vb^T on the lower triangle, dvb = M^T dout; vb_s = beta_s v_s gives
  //      dv_s = beta_s dvb_s and the first part of dbeta_s = v_s . dvb_s.
  const RowMatrix<Scalar> dM = (dout * vb.transpose()).template triangularView<Eigen::Lower>();
  const RowMatrix<Scalar> dvb = M.transpose() * dout;
  dv.noalias() = beta.asDiagonal() * dvb;
  dbeta = (v.cwiseProduct(dvb)).rowwise().sum();

  // (20) M = R ⊙ W with W as in the Mamba-2 form: dR = dM ⊙ W; dlam_t[l] = sum over
  //      ell(t,s) = l of R_ts D_ts dM_ts (eq. 5 with R for S); dg from P = M ⊙ dM exactly as
  //      eqs. 6-8, because Tut does not depend on g.
  const RowMatrix<Scalar> dR = dM.cwiseProduct(W);
  auto dlam = slice_bt(gr.dlam, b, h);
  dlam.setZero();
  for (Index t = 0; t < T; ++t) {
    Scalar log_decay = 0;  // sum_{r=s+1..t} g_r, grown outwards as in decay_mask
    for (Index s = t; s >= 0; --s) {
      dlam(t, level(t, s)) += R(t, s) * std::exp(log_decay) * dM(t, s);
      log_decay += g(s);
    }
  }
  const RowMatrix<Scalar> P = M.cwiseProduct(dM);
  const Vector<Scalar> dgcum = P.rowwise().sum() - P.colwise().sum().transpose();
  auto dg = slice_bt(gr.dg, b, h);
  Scalar acc = 0;
  for (Index t = T - 1; t >= 0; --t) {
    acc += dgcum(t);
    dg(t) = acc;
  }
  dg(0) = 0;  // exactly zero in exact arithmetic (g_0 never multiplies anything), as eq. 8

  // (21) R = S Tut: dS = dR Tut^T, dTut = S^T dR. Only the lower triangle of S is free
  //      (S = tril(q k^T)): dR Tut^T (lower times upper) is a full matrix, and its upper triangle
  //      must be dropped, or dq_t would collect terms of later keys.
  const RowMatrix<Scalar> dS = (dR * Tut.transpose()).template triangularView<Eigen::Lower>();
  const RowMatrix<Scalar> dTut = S.transpose() * dR;
  // (22) S = tril(q k^T): dq = dS k, dk = dS^T q (the Mamba-2 eq. 4).
  dq_bh.noalias() += dS * k;
  dk_bh.noalias() += dS.transpose() * q;

  // (23) Tut = (I + Akk)^{-1}: dAkk = strict_lower(-Tut^T dTut Tut^T).
  const RowMatrix<Scalar> dA = unit_lower_inverse_backward(Tut, dTut);
  // (24) Akk_ts = beta_t (k_t . k_s), t > s: dbeta_t += sum_s dAkk_ts (k_t . k_s); with
  //      E = diag(beta) dAkk, k_t receives sum_s E_ts k_s (as the row index) and k_s receives
  //      sum_t E_ts k_t (as the column index): dk += (E + E^T) k.
  const RowMatrix<Scalar> KK = k * k.transpose();
  dbeta += dA.cwiseProduct(KK).rowwise().sum();
  const RowMatrix<Scalar> E = beta.asDiagonal() * dA;
  dk_bh.noalias() += (E + E.transpose()) * k;
}

}  // namespace

template <class Scalar>
void gdn_naive_forward(const GdnInputs<Scalar>& in, TensorView<Scalar, 4> o) {
  const AttentionDims d = check_gdn_inputs(in);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_gdn_mask_fits<Scalar>(d, 5);  // Akk, Tut, S, M, W
  for_each_head(d, [&](Index b, Index h) { gdn_naive_forward_head(in, d, b, h, o); });
}

template <class Scalar>
void gdn_naive_backward(const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                        const GdnGrads<Scalar>& grads) {
  const AttentionDims d = check_gdn_backward_arguments(in, dout, grads);
  check_gdn_mask_fits<Scalar>(d, 14);  // Tut, S, R, W, M, dM, dR, P, dS, dTut, dA, KK, E, ...
  for (auto* p : {&grads.dq, &grads.dk, &grads.dlam})
    std::fill(p->data, p->data + p->size(), Scalar(0));
  for_each_head_shared_qk<Scalar>(
      d, grads.dq, grads.dk, [&](Index b, Index h, MatrixMap<Scalar> dq_bh, MatrixMap<Scalar> dk_bh) {
        gdn_naive_backward_head(in, d, b, h, dout, grads, dq_bh, dk_bh);
      });
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                           \
  template RowMatrix<Scalar> unit_lower_inverse<Scalar>(const RowMatrix<Scalar>&);              \
  template RowMatrix<Scalar> unit_lower_inverse_backward<Scalar>(const RowMatrix<Scalar>&,      \
                                                                 const RowMatrix<Scalar>&);     \
  template void gdn_naive_forward<Scalar>(const GdnInputs<Scalar>&, TensorView<Scalar, 4>);     \
  template void gdn_naive_backward<Scalar>(const GdnInputs<Scalar>&, ConstTensorView<Scalar, 4>, \
                                           const GdnGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
