// Recurrent (Fenwick tree) form, SPEC.md §4, and its backward through time, §4.1
// (docs/backward.md §2). Each (batch, head) steps one FenwickHeadState token by token; this is
// the readable O(log T)-state view of the operator and the basis of the streaming decoder.
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/parallel.hpp>

#include <algorithm>
#include <cmath>

namespace loglinear {

template <class Scalar>
Index check_initial_state(const FenwickState<Scalar>* initial, Index B, Index H, Index K,
                          Index V) {
  if (initial == nullptr) return 0;
  if (initial->tokens < 0) {
    throw std::invalid_argument("initial_state.tokens: expected >= 0, got " +
                                std::to_string(initial->tokens));
  }
  const Index L0 = initial->tokens == 0 ? 0 : num_levels(initial->tokens);
  check_shape<5>("initial_state.S", initial->S.shape(), {B, H, L0, K, V},
                 " = [B,H,num_levels(tokens),K,V]");
  check_finite<Scalar, 5>("initial_state.S", initial->S.view());
  return initial->tokens;
}

template <class Scalar>
void prepare_final_state(const AttentionDims& d, const StateIO<Scalar>& io) {
  if (!io.final) return;
  check_allocation("final_state: the [B,H,num_levels(t0+T),K,V] state",
                   checked_product("final_state", {d.B, d.H, num_levels(d.t0 + d.T), d.K, d.V}), sizeof(Scalar));
  io.final->tokens = d.t0 + d.T;
  io.final->S = Tensor<Scalar, 5>({d.B, d.H, num_levels(d.t0 + d.T), d.K, d.V});
}

template <class Scalar>
AttentionDims check_backward_arguments(const AttentionInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                                       const AttentionGrads<Scalar>& grads, const StateIO<Scalar>& io,
                                       const Tensor<Scalar, 5>* d_final) {
  const Index t0 = check_initial_state(io.initial, in.v.shape[0], in.v.shape[2], in.q.shape[3], in.v.shape[3]);
  const AttentionDims d = check_inputs(in, t0);
  check_shape<4>("dout", dout.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_finite<Scalar, 4>("dout", dout);
  check_grads(grads, d);
  if (d_final) {
    check_shape<5>("d_final", d_final->shape(), {d.B, d.H, num_levels(t0 + d.T), d.K, d.V},
                   " = [B,H,num_levels(t0+T),K,V]");
    check_finite<Scalar, 5>("d_final", d_final->view());
  }
  return d;
}

namespace {

// Starting state of head (b, h): empty, or the exported initial state.
template <class Scalar>
FenwickHeadState<Scalar> start_state(const AttentionDims& d, const StateIO<Scalar>& io, Index b,
                                     Index h) {
  FenwickHeadState<Scalar> head(d.K, d.V);
  if (io.initial && io.initial->tokens > 0) head.assign(d.t0, head_levels(io.initial, b, h));
  return head;
}

template <class Scalar>
void recurrent_forward_head(const AttentionInputs<Scalar>& in, const AttentionDims& d,
                            const StateIO<Scalar>& io, Index b, Index h, TensorView<Scalar, 4> o_all) {
  const auto q = slice_bt(in.q, b, d.group_of(h));
  const auto k = slice_bt(in.k, b, d.group_of(h));
  const auto v = slice_bt(in.v, b, h);
  const auto g = slice_bt(in.g, b, h);
  const auto lam = slice_bt(in.lam, b, h);
  auto o = slice_bt(o_all, b, h);

  FenwickHeadState<Scalar> state = start_state(d, io, b, h);
  for (Index t = 0; t < d.T; ++t) {
    state.insert(k.row(t).transpose(), v.row(t).transpose(), g(t));
    o.row(t) = state.read(q.row(t).transpose(), lam.row(t).transpose()).transpose();
  }
  if (io.final) set_head_levels(io.final->S, b, h, state.S());
}

// Refuses, before allocating, `copies` Fenwick states ([levels,K,V] each) that cannot fit.
template <class Scalar>
void check_states_fit(const AttentionDims& d, Index copies, const std::string& what) {
  check_allocation("q, v: " + what + " (num_levels = " + std::to_string(d.levels) + ", K = " +
                       std::to_string(d.K) + ", V = " + std::to_string(d.V) + ")",
                   checked_product("q, v: " + what, {copies, d.levels, d.K, d.V}), sizeof(Scalar));
}

// One head of the backward through time (docs/backward.md §2, eqs. 11-13). The forward is
// replayed once to take a snapshot of the state at every segment start (segments of
// ceil(sqrt(T)) tokens); then segments are visited last to first, each replayed from its
// snapshot to recover the post-insert states S_t[l] and merge levels m_t it needs.
template <class Scalar>
void recurrent_backward_head(const AttentionInputs<Scalar>& in, const AttentionDims& d,
                             const StateIO<Scalar>& io, Index b, Index h,
                             ConstTensorView<Scalar, 4> dout_all, const AttentionGrads<Scalar>& gr,
                             MatrixMap<Scalar> dq, MatrixMap<Scalar> dk,
                             const Tensor<Scalar, 5>* d_final, Tensor<Scalar, 5>* d_initial) {
  const Index gi = d.group_of(h);
  const auto q = slice_bt(in.q, b, gi);
  const auto k = slice_bt(in.k, b, gi);
  const auto v = slice_bt(in.v, b, h);
  const auto g = slice_bt(in.g, b, h);
  const auto lam = slice_bt(in.lam, b, h);
  const auto dout = slice_bt(dout_all, b, h);
  auto dv = slice_bt(gr.dv, b, h);
  auto dg = slice_bt(gr.dg, b, h);
  auto dlam = slice_bt(gr.dlam, b, h);

  const Index seg = std::max<Index>(1, static_cast<Index>(std::ceil(std::sqrt(double(d.T)))));
  std::vector<FenwickHeadState<Scalar>> snapshots;
  FenwickHeadState<Scalar> state = start_state(d, io, b, h);
  for (Index t = 0; t < d.T; ++t) {
    if (t % seg == 0) snapshots.push_back(state);
    state.insert(k.row(t).transpose(), v.row(t).transpose(), g(t));
  }

  // dS[l]: gradient w.r.t. the level-l state after the insert of the token being visited.
  const int L1 = num_levels(d.t0 + d.T);
  std::vector<RowMatrix<Scalar>> dS(L1, RowMatrix<Scalar>::Zero(d.K, d.V));
  for (int l = 0; d_final && l < L1; ++l)
    dS[l] = Eigen::Map<const RowMatrix<Scalar>>(&(*d_final)(b, h, l, 0, 0), d.K, d.V);

  // Post-insert state of every token of one segment; allocated once and overwritten in place
  // (same-sized Eigen assignments do not reallocate), which keeps the backward allocation-free.
  std::vector<FenwickHeadState<Scalar>> post(seg, FenwickHeadState<Scalar>(d.K, d.V));
  Vector<Scalar> Sd(d.K);  // S_t[l] dout_t, reused
  for (Index s = static_cast<Index>(snapshots.size()) - 1; s >= 0; --s) {
    const Index t_begin = s * seg, t_end = std::min(d.T, t_begin + seg);
    FenwickHeadState<Scalar> replay = snapshots[s];
    for (Index t = t_begin; t < t_end; ++t) {
      replay.insert(k.row(t).transpose(), v.row(t).transpose(), g(t));
      post[t - t_begin] = replay;
    }
    for (Index t = t_end - 1; t >= t_begin; --t) {
      const FenwickHeadState<Scalar>& S_t = post[t - t_begin];
      const auto q_t = q.row(t).transpose();
      const auto dout_t = dout.row(t).transpose();
      // eq. 11, forward o_t = sum_l lam_t[l] S_t[l]^T q_t: dq_t, dlam_t[l], and dS[l] += lam q dout^T.
      dlam.row(t).setZero();
      for (int l = 0; l < S_t.levels(); ++l) {
        Sd.noalias() = S_t.S(l) * dout_t;
        dq.row(t).noalias() += lam(t, l) * Sd.transpose();
        dlam(t, l) = q_t.dot(Sd);
        dS[l].noalias() += lam(t, l) * q_t * dout_t.transpose();
      }
      // eq. 12, forward S[0] = k_t v_t^T (overwrite): dk_t, dv_t from dS[0], which then stops.
      dk.row(t).noalias() += (dS[0] * v.row(t).transpose()).transpose();
      dv.row(t).noalias() = k.row(t) * dS[0];
      dS[0].setZero();
      // eq. 13, forward S[l] = a_t S_pre[l] for l >= 1: dg_t = sum_l <S_t[l], dS[l]>, dS *= a_t.
      Scalar dg_t = 0;
      for (int l = 1; l < S_t.levels(); ++l) dg_t += S_t.S(l).cwiseProduct(dS[l]).sum();
      dg(t) = dg_t;
      const Scalar a_t = std::exp(g(t));
      for (auto& dS_l : dS) dS_l *= a_t;
      // Forward cascade: levels 0..m-1 were summed into level m, then cleared.
      for (int l = 0; l < S_t.last_merge(); ++l) dS[l] = dS[S_t.last_merge()];
    }
  }
  // What is left in dS is the gradient w.r.t. the state before the call's first token.
  const Index L0 = d.t0 == 0 ? 0 : num_levels(d.t0);
  for (Index l = 0; d_initial && l < L0; ++l)
    Eigen::Map<RowMatrix<Scalar>>(&(*d_initial)(b, h, l, 0, 0), d.K, d.V) = dS[l];
}

}  // namespace

template <class Scalar>
void recurrent_forward(const AttentionInputs<Scalar>& in, TensorView<Scalar, 4> o,
                       const StateIO<Scalar>& io) {
  const Index t0 = check_initial_state(io.initial, in.v.shape[0], in.v.shape[2], in.q.shape[3],
                                       in.v.shape[3]);
  const AttentionDims d = check_inputs(in, t0);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_states_fit<Scalar>(d, 1, "the Fenwick state of one head");
  prepare_final_state(d, io);
  for_each_head(d, [&](Index b, Index h) { recurrent_forward_head(in, d, io, b, h, o); });
}

template <class Scalar>
void recurrent_backward(const AttentionInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                        const AttentionGrads<Scalar>& grads, const StateIO<Scalar>& io,
                        const Tensor<Scalar, 5>* d_final, Tensor<Scalar, 5>* d_initial) {
  const AttentionDims d = check_backward_arguments(in, dout, grads, io, d_final);
  // Per head in flight: ~sqrt(T) snapshots, as many post-insert states, and dS.
  const Index seg = std::max<Index>(1, static_cast<Index>(std::ceil(std::sqrt(double(d.T)))));
  check_states_fit<Scalar>(d, 2 * seg + 1, "the backward's 2 x ceil(sqrt(T)) + 1 Fenwick states of one head");
  if (d_initial)
    *d_initial = Tensor<Scalar, 5>({d.B, d.H, d.t0 == 0 ? 0 : num_levels(d.t0), d.K, d.V});
  for (auto* p : {&grads.dq, &grads.dk, &grads.dlam})
    std::fill(p->data, p->data + p->size(), Scalar(0));
  for_each_head_shared_qk<Scalar>(
      d, grads.dq, grads.dk, [&](Index b, Index h, MatrixMap<Scalar> dq_bh, MatrixMap<Scalar> dk_bh) {
        recurrent_backward_head(in, d, io, b, h, dout, grads, dq_bh, dk_bh, d_final, d_initial);
      });
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                        \
  template Index check_initial_state<Scalar>(const FenwickState<Scalar>*, Index, Index, Index, \
                                             Index);                                          \
  template void recurrent_forward<Scalar>(const AttentionInputs<Scalar>&,                    \
                                          TensorView<Scalar, 4>, const StateIO<Scalar>&);    \
  template void recurrent_backward<Scalar>(                                                    \
      const AttentionInputs<Scalar>&, ConstTensorView<Scalar, 4>, const AttentionGrads<Scalar>&, \
      const StateIO<Scalar>&, const Tensor<Scalar, 5>*, Tensor<Scalar, 5>*);                  \
  template void prepare_final_state<Scalar>(const AttentionDims&, const StateIO<Scalar>&);     \
  template AttentionDims check_backward_arguments<Scalar>(                                     \
      const AttentionInputs<Scalar>&, ConstTensorView<Scalar, 4>, const AttentionGrads<Scalar>&, \
      const StateIO<Scalar>&, const Tensor<Scalar, 5>*);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
