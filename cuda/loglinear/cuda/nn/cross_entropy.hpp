// GPU twin of reference/loglinear/nn/cross_entropy.hpp: mean softmax cross-entropy over the scored
// rows (target -1 = not scored) and its gradient in one pass, as the CPU twin. One warp per row
// (max, argmax, log-sum-exp, the gradient row); the loss and the count of right predictions are
// then summed over rows in double, in a fixed order, and copied back: the one synchronisation of a
// training step. O(N vocab).
/// \file
/// \brief GPU twin of nn/cross_entropy.hpp: masked softmax cross-entropy and its gradient
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

#include <cstdint>

namespace loglinear::cuda::nn {

/// Mean cross-entropy over the rows whose target is >= 0, and its gradient.
/// @param logits [N, vocab] @param targets device pointer of N ids in [-1, vocab) (-1: not scored)
/// @param scored the number of targets >= 0 (the caller counts them on the host, where the batch is)
/// @param dlogits if not null, resized to [N, vocab] and overwritten with d(mean loss)/d(logits)
///        (zero on unscored rows) @param correct if not null, receives the number of scored rows
///        whose argmax (first maximum) is the target.
/// @return the mean loss in nats (0 if scored = 0). Waits for the stream (it returns a value).
/// @throws std::invalid_argument "scored: expected 0 <= scored <= N ..." when out of range.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
double cross_entropy(Context& ctx, const DeviceMatrix& logits, const std::int32_t* targets, Index scored,
                     DeviceMatrix* dlogits, Index* correct = nullptr);

}  // namespace loglinear::cuda::nn
