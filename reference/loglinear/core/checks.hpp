// Argument validation at the public boundary (STYLE.md "Errors"): every check throws
// std::invalid_argument whose message names the argument, the expected value and the given one.
/// \file
/// \brief Argument validation at the public boundary (STYLE.md "Errors")
/// \ingroup floor_core
#pragma once

#include <loglinear/core/inputs.hpp>

#include <initializer_list>
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

/// The chunk size a chunked call over the absolute tokens [t0, end) really uses.
///
/// A chunk size C >= end puts every token in chunk 0, so all C >= bit_ceil(end) give the same
/// chunking and bit-identical results; C is therefore clamped to the smallest power of two
/// >= end (= T when no state is resumed). Any larger C, up to 2^62, is accepted; only the
/// work arrays shrink. Never sizes anything from the caller's C itself.
/// @param C    requested chunk size, a power of two >= 1 (see check_chunk_size)
/// @param end  t0 + T >= 1, one past the absolute position of the call's last token
/// @throws std::invalid_argument if C is not a power of two >= 1 or end < 1.
Index effective_chunk_size(Index C, Index end);

/// Product of `sizes` (each >= 0), the element count of an allocation they would size.
/// @param what  names the allocation in the message, e.g. "Decoder: the streams B x H"
/// @param sizes the extents whose product is taken, each >= 0
/// @throws std::invalid_argument("<what>: ... overflows") if the product does not fit in Index.
Index checked_product(const std::string& what, std::initializer_list<Index> sizes);

/// Refuses, before anything is allocated, an allocation that cannot fit: `count` elements of
/// `bytes_each` bytes whose total overflows or exceeds this machine's physical memory.
/// @throws std::invalid_argument naming `what`, the sizes and the memory available.
void check_allocation(const std::string& what, Index count, Index bytes_each);

/// The shape checks of check_inputs alone (no data is read): callers that must convert or copy
/// arrays first (the Python module) call it before they allocate anything.
/// @param q, k, v, g, lam  the shapes of the operator's inputs
/// @param t0 absolute position of the first token (non-zero only when resuming a state).
/// @throws std::invalid_argument naming the offending argument.
AttentionDims check_input_shapes(const Shape<4>& q, const Shape<4>& k, const Shape<4>& v,
                                 const Shape<3>& g, const Shape<4>& lam, Index t0 = 0);

/// Validates a full set of operator inputs and returns their sizes.
///
/// Checks: every view non-empty and consistent with q's [B,T,G,K]; T >= 1; G divides H;
/// L >= num_levels(t0 + T); element counts that fit in Index; all values finite; g <= 0.
/// @param in the operator's inputs q, k, v, g, lam (views; only read).
/// @param t0 absolute position of the first token (non-zero only when resuming a state).
/// @throws std::invalid_argument naming the offending argument.
template <class Scalar>
AttentionDims check_inputs(const AttentionInputs<Scalar>& in, Index t0 = 0);

/// Validates gradient outputs against `d` (shapes only).
template <class Scalar>
void check_grads(const AttentionGrads<Scalar>& grads, const AttentionDims& d);

}  // namespace loglinear
