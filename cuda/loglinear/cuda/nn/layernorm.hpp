// GPU twin of reference/loglinear/nn/layernorm.hpp: LayerNorm over the last axis with scale and
// shift (the task model's post-norm, SPEC.md §8), eps = 1e-5. One warp per row: the row's sums
// are warp-shuffle trees in a fixed order; dgamma and dbeta are deterministic column sums
// (core/reduce.hpp). O(N d) both ways.
/// \file
/// \brief GPU twin of nn/layernorm.hpp: LayerNorm forward and backward
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda::nn {

/// What layernorm_backward needs from the forward (twin of nn::LayerNormCache), plus the
/// backward's own temporary.
struct LayerNormCache {
  DeviceMatrix xhat;    ///< (x - mean) * rstd, [N, d]
  DeviceMatrix rstd;    ///< 1 / sqrt(var + eps), [N, 1]
  DeviceMatrix dy_xhat; ///< backward's dy ⊙ xhat, [N, d], summed into dgamma
};

/// y = (x - mean) / sqrt(var + eps) * gamma + beta per row. @param x [N, d] @param gamma, beta [1, d]
/// @param cache overwritten @param y resized to [N, d] (may not alias x).
/// @throws std::invalid_argument "gamma: ..." / "beta: ..." unless [1, d].
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void layernorm_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& gamma, const DeviceMatrix& beta,
                       LayerNormCache& cache, DeviceMatrix& y);
/// Backward: dgamma += sum_n dy xhat, dbeta += sum_n dy (ADDED); dx WRITTEN (resized to [N, d]).
/// @throws std::invalid_argument "dy: ..." unless dy has the cached [N, d] shape, "dgamma"/"dbeta"
///         unless [1, d].
void layernorm_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& gamma, LayerNormCache& cache,
                        DeviceMatrix& dgamma, DeviceMatrix& dbeta, DeviceMatrix& dx);

}  // namespace loglinear::cuda::nn
