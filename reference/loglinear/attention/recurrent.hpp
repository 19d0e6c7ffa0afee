// Recurrent (Fenwick tree) form of log-linear attention, O(T log T · K V) per head, O(L K V)
// memory (SPEC.md §4): one FenwickHeadState stepped token by token. The definition it must
// match is naive.hpp; the fast blockwise sibling is chunked.hpp.
/// \file
/// \brief Recurrent (Fenwick tree) form of log-linear attention, O(T log T · K V) per head, O(L K V) memory (SPEC.md §4)
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/fenwick_state.hpp>
#include <loglinear/core/inputs.hpp>

namespace loglinear {

/// Optional state in and out of a recurrent or chunked call (continuing an earlier prefix).
template <class Scalar>
struct StateIO {
  /// State after an earlier prefix (nullptr: start from empty). The call's first token is then
  /// at absolute position initial->tokens, and lam needs L >= num_levels(tokens + T).
  const FenwickState<Scalar>* initial = nullptr;
  /// If not nullptr, receives the state after the call's last token.
  FenwickState<Scalar>* final = nullptr;
};

/// Recurrent forward: steps the Fenwick state through every token (SPEC.md §4).
///
/// @param in     q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); lam [B,T,H,L]
/// @param o      output [B,T,H,V], overwritten
/// @param state  optional initial / final Fenwick state; initial->S must be
///               [B,H,num_levels(tokens),K,V]
/// @throws std::invalid_argument on bad shapes or values.
template <class Scalar>
void recurrent_forward(const AttentionInputs<Scalar>& in, TensorView<Scalar, 4> o,
                       const StateIO<Scalar>& state = {});

/// Recurrent backward (BPTT over the Fenwick states, SPEC.md §4.1, docs/backward.md §2):
/// overwrites `grads` with dq, dk, dv, dg, dlam.
///
/// Stores a snapshot of the Fenwick state every `ceil(sqrt(T))` tokens during a forward replay
/// and recomputes the post-insert states of one segment at a time in reverse, so memory is
/// O(sqrt(T) L K V) per head in flight instead of O(T L K V); the extra cost is one forward.
/// @param in        the forward's inputs, as recurrent_forward
/// @param dout      dL/do [B,T,H,V]
/// @param grads     dq, dk [B,T,G,K]; dv [B,T,H,V]; dg [B,T,H]; dlam [B,T,H,L], overwritten
/// @param state     the forward's initial / final state request, as recurrent_forward
/// @param d_initial if not nullptr (and state.initial given), receives dL/dS_initial.
/// @param d_final   if not nullptr (and state.final requested), the gradient arriving at the
///                  final state [B,H,L,K,V], added to the backward flow.
template <class Scalar>
void recurrent_backward(const AttentionInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                        const AttentionGrads<Scalar>& grads, const StateIO<Scalar>& state = {},
                        const Tensor<Scalar, 5>* d_final = nullptr,
                        Tensor<Scalar, 5>* d_initial = nullptr);

/// Validates an initial state against the inputs' sizes and returns its token count (0 if none).
/// @throws std::invalid_argument "initial_state.<field>: ..." on a bad token count, shape or value.
template <class Scalar>
Index check_initial_state(const FenwickState<Scalar>* initial, Index B, Index H, Index K,
                          Index V);

/// The checks every backward of a stateful form (recurrent, chunked) runs first, in one place:
/// the initial state, the inputs, dout [B,T,H,V] (finite), the gradients' shapes and d_final
/// [B,H,num_levels(t0+T),K,V] (finite). @return the validated sizes.
/// @throws std::invalid_argument naming the offending argument.
template <class Scalar>
AttentionDims check_backward_arguments(const AttentionInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                                       const AttentionGrads<Scalar>& grads, const StateIO<Scalar>& io,
                                       const Tensor<Scalar, 5>* d_final);

/// Shapes io.final (if requested) as [B,H,num_levels(t0+T),K,V] and sets its token count, after
/// checking that it fits in memory (both stateful forms call it before writing the state).
/// @throws std::invalid_argument if the state cannot be allocated.
template <class Scalar>
void prepare_final_state(const AttentionDims& d, const StateIO<Scalar>& io);

}  // namespace loglinear
