// GPU twin of reference/loglinear/nn/rmsnorm.hpp: RMSNorm and the gated RMSNorm of the Mamba-2
// mixer (SPEC.md §8, norm_before_gate = False), per group of d / groups features, eps = 1e-5 as the
// fla config. A row's `groups` segments are contiguous, so [N, d] is [N groups, d / groups] and one
// warp normalises one segment: its sums are warp-shuffle trees in a fixed order; the gate x ⊙ SiLU(z)
// is fused into the same kernel, and so is the gate's backward. dw is a deterministic column sum
// (core/reduce.hpp). O(N d) both ways.
/// \file
/// \brief GPU twin of nn/rmsnorm.hpp: RMSNorm and gated RMSNorm, forward and backward
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda::nn {

/// What rmsnorm_backward needs from the forward (twin of nn::RmsNormCache), plus the backward's
/// own temporary.
struct RmsNormCache {
  DeviceMatrix xhat;     ///< x * rstd per group, [N, d]
  DeviceMatrix rstd;     ///< 1 / sqrt(mean_group(x^2) + eps), [N, groups]
  DeviceMatrix dy_xhat;  ///< backward's dy ⊙ xhat, [N, d], summed into dw
};

/// RMSNorm per group of d / groups features: y = x / sqrt(mean(x^2) + eps) * w.
/// @param x [N, d] @param w [1, d] @param cache overwritten @param y resized to [N, d] (may not alias x)
/// @param groups divides d (1 = the plain RMSNorm) @param eps as the CPU twin's default.
/// @throws std::invalid_argument "w: ..." unless [1, d], "groups: ..." unless a divisor of d.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void rmsnorm_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& w, RmsNormCache& cache,
                     DeviceMatrix& y, Index groups = 1, float eps = 1e-5f);

/// Backward of rmsnorm_forward: dw += sum_n dy xhat (ADDED); dx = rstd (w dy - xhat mean_group(w dy
/// xhat)) WRITTEN into dx (resized to [N, d]), or ADDED into it when accumulate_dx is true (then
/// already [N, d]; the residual stream's dx += of the CPU model). dx may not alias dy.
/// @throws std::invalid_argument "dy: ..." unless the forward's [N, d], "w"/"dw" unless [1, d],
///         "dx: ..." when accumulating into another shape.
void rmsnorm_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& w, RmsNormCache& cache,
                      DeviceMatrix& dw, DeviceMatrix& dx, bool accumulate_dx = false);

/// What gated_rmsnorm_backward needs from the forward (twin of nn::GatedRmsNormCache).
struct GatedRmsNormCache {
  DeviceMatrix x;     ///< the input x, [N, d] (a copy, as the CPU twin keeps)
  DeviceMatrix z;     ///< the gate input z, [N, d] (a copy)
  RmsNormCache norm;  ///< the inner RMSNorm of x ⊙ SiLU(z)
};

/// Gated RMSNorm with norm_before_gate = False (SPEC.md §8): y = RMSNorm(x ⊙ SiLU(z)) * w.
/// @param x, z [N, d] @param w [1, d] @param cache overwritten @param y resized to [N, d] (may not
/// alias x or z) @param groups, eps as rmsnorm_forward.
/// @throws std::invalid_argument "z: ..." unless z has x's shape, and as rmsnorm_forward.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void gated_rmsnorm_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& z, const DeviceMatrix& w,
                           GatedRmsNormCache& cache, DeviceMatrix& y, Index groups = 1, float eps = 1e-5f);

/// Backward of gated_rmsnorm_forward: dw += sum_n dy xhat (ADDED); dx and dz OVERWRITTEN (resized to
/// [N, d]): dx = dgated ⊙ SiLU(z), dz = dgated ⊙ x ⊙ SiLU'(z), dgated the inner RMSNorm's dx.
/// dx and dz may not alias dy or each other.
/// @throws std::invalid_argument "dy: ..." unless the forward's [N, d], "w"/"dw" unless [1, d].
void gated_rmsnorm_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& w, GatedRmsNormCache& cache,
                            DeviceMatrix& dw, DeviceMatrix& dx, DeviceMatrix& dz);

}  // namespace loglinear::cuda::nn
