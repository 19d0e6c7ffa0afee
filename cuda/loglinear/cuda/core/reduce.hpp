// Deterministic reductions shared by the GPU layers: the column sums that bias, LayerNorm and
// RMSNorm gradients need (db = sum over the N rows of dy). Every sum runs in a fixed order (per
// block of rows in order, then the blocks in order), never through atomics, so the same inputs
// give the same bits run after run: this layer adds no nondeterminism (the attention backward's
// atomics are the one source in a training step, apps/loglinear_train.cpp --help). Cost O(rows cols).
/// \file
/// \brief Deterministic column sums (bias and norm gradients) on the GPU
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda {

/// out[c] (+)= sum_r m[r, c] over the rows of m, in a fixed order.
/// @param m [rows, cols] @param out [1, cols]: resized when accumulate is false, ADDED into when
///        accumulate is true (then it must already be [1, cols]).
/// @throws std::invalid_argument "out: expected shape [1, cols] ..." when accumulating into a
///         matrix of another shape.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param accumulate ADD into out instead of overwriting it
void column_sum(Context& ctx, const DeviceMatrix& m, DeviceMatrix& out, bool accumulate);

/// The raw-pointer form: out[c] (+)= sum_r m[r*cols + c]; `out` holds cols floats.
void column_sum(Context& ctx, const float* m, Index rows, Index cols, float* out, bool accumulate);

}  // namespace loglinear::cuda
