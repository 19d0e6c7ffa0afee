// Argument validation of the Gated DeltaNet operator at the public boundary, in the style of
// checks.hpp: the Mamba-2 checks for q, k, v, g, lam, then beta (shape, finite, in [0, 1]).
/// \file
/// \brief Argument validation of the Gated DeltaNet operator (SPEC.md §6)
/// \ingroup floor_core
#pragma once

#include <loglinear/core/checks.hpp>
#include <loglinear/core/gdn_inputs.hpp>

namespace loglinear {

/// Validates a full set of Gated DeltaNet inputs and returns their sizes.
///
/// Checks everything check_inputs checks for q, k, v, g, lam, then beta: shape [B,T,H], data
/// present, finite, and every value in [0, 1] (outside it the transition
/// I - beta k k^T is no longer the delta rule's partial erase).
/// @param in the operator's inputs (views; only read).
/// @param t0 absolute position of the first token (non-zero only when resuming a state).
/// @throws std::invalid_argument naming the offending argument, e.g. "beta: expected values in
///         [0, 1], got 1.500000 at flat index 3".
template <class Scalar>
AttentionDims check_gdn_inputs(const GdnInputs<Scalar>& in, Index t0 = 0);

/// Validates Gated DeltaNet gradient outputs against `d` (shapes only; dbeta [B,T,H]).
/// @param grads the gradient views a backward will overwrite.
/// @param d     the sizes returned by check_gdn_inputs.
/// @throws std::invalid_argument naming the gradient of the wrong shape.
template <class Scalar>
void check_gdn_grads(const GdnGrads<Scalar>& grads, const AttentionDims& d);

}  // namespace loglinear
