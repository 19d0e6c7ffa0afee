// Recurrent (Fenwick tree) form of log-linear Gated DeltaNet, SPEC.md §6: the cascade of §4 with
// the delta-rule transition S[l] = a_t (I - beta_t k_t k_t^T) S[l] applied to every level and
// the write beta_t k_t v_t^T. O(T log T · K V) per head, O(L K V) state. The definition it must
// match is gdn_naive.hpp.
/// \file
/// \brief Recurrent (Fenwick tree) form of log-linear Gated DeltaNet (SPEC.md §6)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/gdn_inputs.hpp>

namespace loglinear {

/// Recurrent Gated DeltaNet forward: steps a Fenwick state with delta-rule transitions through
/// every token (SPEC.md §6, §4). Step t: cascade; S[l] = a_t (I - beta_t k_t k_t^T) S[l] for
/// every level; S[0] = beta_t k_t v_t^T; o_t = sum_l lam_t[l] S[l]^T q_t.
///
/// @param in  q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); beta [B,T,H] in [0, 1];
///            lam [B,T,H,L], L >= num_levels(T)
/// @param o   output [B,T,H,V], overwritten
/// @throws std::invalid_argument on bad shapes or values (see check_gdn_inputs) or a wrong o shape.
template <class Scalar>
void gdn_recurrent_forward(const GdnInputs<Scalar>& in, TensorView<Scalar, 4> o);

/// Recurrent Gated DeltaNet backward: reverse-time recurrence over the Fenwick states
/// (docs/backward.md eqs. 25-27); overwrites `grads` with dq, dk, dv, dg, dbeta, dlam.
///
/// Like recurrent_backward, it keeps a snapshot of the state every ceil(sqrt(T)) tokens and
/// replays one segment at a time in reverse, so memory is O(sqrt(T) L K V) per head in flight.
/// The replay keeps each token's state before its transition (the transition is not inverted:
/// I - beta k k^T is singular when beta |k|^2 = 1).
/// @param in     the forward's inputs, as gdn_recurrent_forward
/// @param dout   dL/do [B,T,H,V]
/// @param grads  dq, dk [B,T,G,K]; dv [B,T,H,V]; dg, dbeta [B,T,H]; dlam [B,T,H,L], overwritten
/// @throws std::invalid_argument on bad shapes or values.
template <class Scalar>
void gdn_recurrent_backward(const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                            const GdnGrads<Scalar>& grads);

}  // namespace loglinear
