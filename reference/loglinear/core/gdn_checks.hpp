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

/// The shape checks of check_gdn_inputs alone (no data is read), for callers that must convert
/// or copy arrays first (the Python module): check_input_shapes for q, k, v, g, lam, then beta
/// [B,T,H], with the messages check_gdn_inputs gives.
/// @param q, k, v, g, lam  the shapes of the Mamba-2 inputs (see check_input_shapes)
/// @param beta             the shape of beta
/// @param t0               absolute position of the first token (non-zero only when resuming a state)
/// @return the sizes. @throws std::invalid_argument naming the offending argument, e.g.
///         "beta: expected shape [2,9,4] = [B,T,H], got [2,9,3]".
AttentionDims check_gdn_input_shapes(const Shape<4>& q, const Shape<4>& k, const Shape<4>& v,
                                     const Shape<3>& g, const Shape<4>& lam, const Shape<3>& beta,
                                     Index t0 = 0);

/// Everything a Gated DeltaNet backward checks before it starts (both forms): the inputs as
/// check_gdn_inputs, dout [B,T,H,V] with data and finite values, and the gradients as check_gdn_grads.
/// @param in the operator's inputs @param dout gradient of the output @param grads the outputs
/// @return the sizes. @throws std::invalid_argument naming the first bad argument.
template <class Scalar>
AttentionDims check_gdn_backward_arguments(const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                                           const GdnGrads<Scalar>& grads);

/// Validates Gated DeltaNet gradient outputs against `d` (shapes, and data behind every view;
/// dbeta [B,T,H]).
/// @param grads the gradient views a backward will overwrite.
/// @param d     the sizes returned by check_gdn_inputs.
/// @throws std::invalid_argument naming the gradient of the wrong shape or
///         without data.
template <class Scalar>
void check_gdn_grads(const GdnGrads<Scalar>& grads, const AttentionDims& d);

}  // namespace loglinear
