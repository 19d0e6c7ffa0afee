// Naive masked form of log-linear attention, O(T^2) per head (SPEC.md §3): the definition every
// other form must match. Faster siblings: recurrent.hpp (O(T log T), step by step) and
// chunked.hpp (O(T log T), blockwise).
/// \file
/// \brief Naive masked form of log-linear attention, O(T^2) per head (SPEC.md §3)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/inputs.hpp>

namespace loglinear {

/// The T x T weight matrix W of one head ("H matrix" of the sources), SPEC.md §3:
/// W[t,s] = lam_t[ell(t, s)] * exp(gcum_t - gcum_s) for s <= t, 0 above the diagonal, where
/// gcum_t = g_0 + ... + g_t is the cumulative log-decay (SPEC.md's G_t; `G` in code is always the
/// number of query/key groups).
///
/// The decay exponent sum_{r=s+1..t} g_r is accumulated per row from the diagonal outwards
/// rather than as a difference of prefix sums, so it is exact to rounding however long the
/// sequence and however strong the decay (no overflow, no cancellation, no NaN).
/// @param g    [T] log-decay of one head (<= 0)
/// @param lam  [T, L] level weights of one head
/// @return     W, [T, T]
/// @throws std::invalid_argument naming g or lam if T < 1, lam is not [T, >= num_levels(T)],
///         a value is not finite, g > 0, or the T x T matrix cannot fit in memory.
template <class Scalar>
RowMatrix<Scalar> decay_mask(const ConstVectorMap<Scalar>& g, const ConstMatrixMap<Scalar>& lam);

namespace detail {
/// decay_mask without its checks, for the naive forms (Mamba-2 and Gated DeltaNet), which validate
/// their inputs once and then build W per head inside an OpenMP region, where an exception would
/// terminate the program. Same parameters and result as decay_mask.
/// @param g [T] log-decay of one head (<= 0, checked by the caller)
/// @param lam [T, L] level weights of one head, L >= num_levels(T) (checked by the caller)
template <class Scalar>
RowMatrix<Scalar> decay_mask_unchecked(const ConstVectorMap<Scalar>& g, const ConstMatrixMap<Scalar>& lam);
}  // namespace detail

/// Naive forward: o = ((Q K^T) ⊙ W) V per (batch, head), SPEC.md §3.
///
/// @param in  q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); lam [B,T,H,L], L >= num_levels(T)
/// @param o   output [B,T,H,V], overwritten
/// Cost O(B H T^2 (K+V)) time, O(T^2) memory per head in flight.
/// @throws std::invalid_argument on bad shapes or values (see check_inputs) or a wrong o shape.
template <class Scalar>
void naive_forward(const AttentionInputs<Scalar>& in, TensorView<Scalar, 4> o);

/// Naive backward (SPEC.md §3.1, docs/backward.md eqs. 1-9): from dout [B,T,H,V] computes
/// dq, dk (summed over the heads of each group), dv, dg and dlam; overwrites `grads`.
/// Recomputes S, W and M from the inputs (nothing is cached by the forward).
/// @throws std::invalid_argument on bad shapes or values.
template <class Scalar>
void naive_backward(const AttentionInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                    const AttentionGrads<Scalar>& grads);

}  // namespace loglinear
