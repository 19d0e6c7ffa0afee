// Argument validation at the public boundary (STYLE.md "Errors"): every check throws
// std::invalid_argument whose message names the argument, the expected value and the given one.
#pragma once

#include <loglinear/attention/inputs.hpp>

#include <stdexcept>
#include <string>

namespace loglinear {

/// Throws std::invalid_argument("<name>: expected shape <expected>, got <actual>") on mismatch.
template <int Rank>
void check_shape(const std::string& name, const Shape<Rank>& actual, const Shape<Rank>& expected,
                 const std::string& note = "") {
  if (actual != expected) {
    throw std::invalid_argument(name + ": expected shape " + shape_string<Rank>(expected) + note +
                                ", got " + shape_string<Rank>(actual));
  }
}

/// Throws std::invalid_argument if any element of `t` is NaN or infinite.
template <class Scalar, int Rank>
void check_finite(const std::string& name, ConstTensorView<Scalar, Rank> t);

/// Throws std::invalid_argument if `C` is not a power of two >= 1.
void check_chunk_size(Index C);

/// Validates a full set of operator inputs and returns their sizes.
///
/// Checks: every view non-empty and consistent with q's [B,T,G,K]; T >= 1; G divides H;
/// L >= num_levels(t0 + T); all values finite; g <= 0.
/// @param in the operator's inputs q, k, v, g, lam (views; only read).
/// @param t0 absolute position of the first token (non-zero only when resuming a state).
/// @throws std::invalid_argument naming the offending argument.
template <class Scalar>
AttentionDims check_inputs(const AttentionInputs<Scalar>& in, Index t0 = 0);

/// Validates gradient outputs against `d` (shapes only).
template <class Scalar>
void check_grads(const AttentionGrads<Scalar>& grads, const AttentionDims& d);

}  // namespace loglinear
