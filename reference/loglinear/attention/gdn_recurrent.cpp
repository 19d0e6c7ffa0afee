// Recurrent (Fenwick tree) form of log-linear Gated DeltaNet, SPEC.md §6, and its backward
// through time (docs/backward.md §4, eqs. 25-27). Same cascade as the Mamba-2 recurrent form
// (recurrent.cpp, fenwick_state.hpp); what changes is the transition: every level is
// left-multiplied by A_t = a_t (I - beta_t k_t k_t^T), so every stored contribution still
// travels through all later erases, and the insert writes beta_t k_t v_t^T.
#include <loglinear/attention/gdn_fenwick_state.hpp>
#include <loglinear/attention/gdn_recurrent.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/gdn_checks.hpp>
#include <loglinear/core/parallel.hpp>

#include <algorithm>
#include <stdexcept>
#include <cmath>
#include <vector>

namespace loglinear {

namespace {

template <class Scalar>
void gdn_recurrent_forward_head(const GdnInputs<Scalar>& in, const AttentionDims& d, Index b,
                                Index h, TensorView<Scalar, 4> o_all) {
  const auto q = slice_bt(in.q, b, d.group_of(h));
  const auto k = slice_bt(in.k, b, d.group_of(h));
  const auto v = slice_bt(in.v, b, h);
  const auto g = slice_bt(in.g, b, h);
  const auto beta = slice_bt(in.beta, b, h);
  const auto lam = slice_bt(in.lam, b, h);
  auto o = slice_bt(o_all, b, h);

  GdnFenwickHeadState<Scalar> state(d.K, d.V);
  for (Index t = 0; t < d.T; ++t) {
    state.step(k.row(t).transpose(), v.row(t).transpose(), g(t), beta(t));
    o.row(t) = state.read(q.row(t).transpose(), lam.row(t).transpose()).transpose();
  }
}

// Refuses, before allocating, `copies` Fenwick states ([levels,K,V] each) that cannot fit.
template <class Scalar>
void check_gdn_states_fit(const AttentionDims& d, Index copies, const std::string& what) {
  check_allocation("q, v: " + what + " (num_levels = " + std::to_string(d.levels) + ", K = " +
                       std::to_string(d.K) + ", V = " + std::to_string(d.V) + ")",
                   checked_product("q, v: " + what, {copies, d.levels, d.K, d.V}), sizeof(Scalar));
}

// One head of the backward through time (docs/backward.md eqs. 25-27). The forward is replayed
// once for a snapshot at every segment start (segments of ceil(sqrt(T)) tokens); segments are
// then visited last to first, each replayed from its snapshot to recover, for every token, the
// state after its cascade and before its transition ("pre") and its merge level m_t.
template <class Scalar>
void gdn_recurrent_backward_head(const GdnInputs<Scalar>& in, const AttentionDims& d, Index b,
                                 Index h, ConstTensorView<Scalar, 4> dout_all,
                                 const GdnGrads<Scalar>& gr, MatrixMap<Scalar> dq,
                                 MatrixMap<Scalar> dk) {
  const Index gi = d.group_of(h);
  const auto q = slice_bt(in.q, b, gi);
  const auto k = slice_bt(in.k, b, gi);
  const auto v = slice_bt(in.v, b, h);
  const auto g = slice_bt(in.g, b, h);
  const auto beta = slice_bt(in.beta, b, h);
  const auto lam = slice_bt(in.lam, b, h);
  const auto dout = slice_bt(dout_all, b, h);
  auto dv = slice_bt(gr.dv, b, h);
  auto dg = slice_bt(gr.dg, b, h);
  auto dbeta = slice_bt(gr.dbeta, b, h);
  auto dlam = slice_bt(gr.dlam, b, h);

  const Index seg = std::max<Index>(1, static_cast<Index>(std::ceil(std::sqrt(double(d.T)))));
  std::vector<GdnFenwickHeadState<Scalar>> snapshots;
  GdnFenwickHeadState<Scalar> state(d.K, d.V);
  for (Index t = 0; t < d.T; ++t) {
    if (t % seg == 0) snapshots.push_back(state);
    state.step(k.row(t).transpose(), v.row(t).transpose(), g(t), beta(t));
  }

  // dS[l]: gradient w.r.t. the level-l state after the insert of the token being visited.
  const int L1 = num_levels(d.T);
  std::vector<RowMatrix<Scalar>> dS(L1, RowMatrix<Scalar>::Zero(d.K, d.V));
  std::vector<GdnFenwickHeadState<Scalar>> pre(seg, GdnFenwickHeadState<Scalar>(d.K, d.V));
  std::vector<int> merged(seg, 0);
  RowMatrix<Scalar> post(d.K, d.V);
  Vector<Scalar> Sd(d.K), kP(d.V), kdS(d.V);
  for (Index s = static_cast<Index>(snapshots.size()) - 1; s >= 0; --s) {
    const Index t_begin = s * seg, t_end = std::min(d.T, t_begin + seg);
    GdnFenwickHeadState<Scalar> replay = snapshots[s];
    for (Index t = t_begin; t < t_end; ++t) {
      merged[t - t_begin] = replay.cascade();
      pre[t - t_begin] = replay;
      replay.transition(k.row(t).transpose(), beta(t), std::exp(g(t)));
      replay.insert(k.row(t).transpose(), v.row(t).transpose(), beta(t));
    }
    for (Index t = t_end - 1; t >= t_begin; --t) {
      const GdnFenwickHeadState<Scalar>& P = pre[t - t_begin];  // levels after the cascade of step t
      const auto q_t = q.row(t).transpose();
      const auto k_t = k.row(t).transpose();
      const auto dout_t = dout.row(t).transpose();
      const Scalar a_t = std::exp(g(t)), beta_t = beta(t);
      // Post-insert states S_t[l], recomputed from pre: the insert at level 0 and A_t P[l] above.
      auto post_of = [&](int l) -> const RowMatrix<Scalar>& {
        if (l == 0) {
          post.noalias() = (beta_t * k_t) * v.row(t);
        } else {
          kP.noalias() = P.S(l).transpose() * k_t;
          post = P.S(l);
          post.noalias() -= (beta_t * k_t) * kP.transpose();
          post *= a_t;
        }
        return post;
      };

      // eq. 25 (eq. 11 unchanged), forward o_t = sum_l lam_t[l] S_t[l]^T q_t.
      dlam.row(t).setZero();
      for (int l = 0; l < P.levels(); ++l) {
        Sd.noalias() = post_of(l) * dout_t;
        dq.row(t).noalias() += lam(t, l) * Sd.transpose();
        dlam(t, l) = q_t.dot(Sd);
        dS[l].noalias() += lam(t, l) * q_t * dout_t.transpose();
      }
      // eq. 26, forward S[0] = beta_t k_t v_t^T (overwrite): dk_t, dv_t, dbeta_t; dS[0] stops.
      Sd.noalias() = dS[0] * v.row(t).transpose();  // dS[0] v_t
      dk.row(t).noalias() += beta_t * Sd.transpose();
      dv.row(t).noalias() = beta_t * (k.row(t) * dS[0]);
      Scalar dbeta_t = k_t.dot(Sd);
      dS[0].setZero();
      // eq. 27, forward S_t[l] = a_t (P[l] - beta_t k_t (k_t^T P[l])) for l >= 1 (P[0] = 0):
      // dg_t = sum_l <S_t[l], dS[l]> (a_t multiplies the whole product, as eq. 13);
      // dbeta_t -= a_t sum_l (k_t^T P[l]) . (k_t^T dS[l]);
      // dk_t -= a_t beta_t sum_l (dS[l] P[l]^T k_t + P[l] dS[l]^T k_t);
      // then dS[l] = A_t^T dS[l] = a_t (dS[l] - beta_t k_t (k_t^T dS[l])) (A_t is symmetric).
      Scalar dg_t = 0;
      for (int l = 1; l < P.levels(); ++l) {
        dg_t += post_of(l).cwiseProduct(dS[l]).sum();
        kP.noalias() = P.S(l).transpose() * k_t;  // (post_of computed it too; spelled out, not relied on)
        kdS.noalias() = dS[l].transpose() * k_t;
        dbeta_t -= a_t * kP.dot(kdS);
        dk.row(t).noalias() -= (a_t * beta_t) * (dS[l] * kP + P.S(l) * kdS).transpose();
        dS[l].noalias() -= (beta_t * k_t) * kdS.transpose();
        dS[l] *= a_t;
      }
      dg(t) = dg_t;
      dbeta(t) = dbeta_t;
      // Forward cascade: levels 0..m-1 were summed into level m, then cleared.
      const int m = merged[t - t_begin];
      for (int l = 0; l < m; ++l) dS[l] = dS[m];
    }
  }
}

}  // namespace

template <class Scalar>
void gdn_recurrent_forward(const GdnInputs<Scalar>& in, TensorView<Scalar, 4> o) {
  const AttentionDims d = check_gdn_inputs(in);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_gdn_states_fit<Scalar>(d, 1, "the Fenwick state of one head");
  for_each_head(d, [&](Index b, Index h) { gdn_recurrent_forward_head(in, d, b, h, o); });
}

template <class Scalar>
void gdn_recurrent_backward(const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                            const GdnGrads<Scalar>& grads) {
  const AttentionDims d = check_gdn_backward_arguments(in, dout, grads);
  // Per head in flight: ~sqrt(T) snapshots, as many pre-transition states, and dS.
  const Index seg = std::max<Index>(1, static_cast<Index>(std::ceil(std::sqrt(double(d.T)))));
  check_gdn_states_fit<Scalar>(d, 2 * seg + 1,
                               "the backward's 2 x ceil(sqrt(T)) + 1 Fenwick states of one head");
  for (auto* p : {&grads.dq, &grads.dk, &grads.dlam})
    std::fill(p->data, p->data + p->size(), Scalar(0));
  for_each_head_shared_qk<Scalar>(
      d, grads.dq, grads.dk, [&](Index b, Index h, MatrixMap<Scalar> dq_bh, MatrixMap<Scalar> dk_bh) {
        gdn_recurrent_backward_head(in, d, b, h, dout, grads, dq_bh, dk_bh);
      });
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                             \
  template void gdn_recurrent_forward<Scalar>(const GdnInputs<Scalar>&, TensorView<Scalar, 4>);   \
  template void gdn_recurrent_backward<Scalar>(const GdnInputs<Scalar>&,                          \
                                               ConstTensorView<Scalar, 4>, const GdnGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
