// GPU twin of reference/loglinear/nn/swiglu.hpp: the SwiGLU MLP of the Mamba-2 block (SPEC.md §8,
// fla GatedMLP), y = (SiLU(x W_gate^T) ⊙ x W_up^T) W_down^T, bias-free. The three products (and the
// five of the backward) are cuBLAS GEMMs through nn/linear.hpp's gemm; the gate and its backward
// are one elementwise kernel each. Cost 3 N d hidden multiply-adds forward, twice that backward.
/// \file
/// \brief GPU twin of nn/swiglu.hpp: the SwiGLU MLP, forward and backward
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda::nn {

/// What swiglu_backward needs from the forward (twin of nn::SwiGluCache), plus the backward's own
/// temporaries.
struct SwiGluCache {
  DeviceMatrix x;      ///< input [N, d] (a copy, as the CPU twin keeps)
  DeviceMatrix gate;   ///< x W_gate^T, [N, hidden]
  DeviceMatrix up;     ///< x W_up^T, [N, hidden]
  DeviceMatrix h;      ///< SiLU(gate) ⊙ up, [N, hidden]
  DeviceMatrix dh;     ///< backward's dy W_down, [N, hidden]
  DeviceMatrix dgate;  ///< backward's d(loss)/d(gate), [N, hidden]
  DeviceMatrix dup;    ///< backward's d(loss)/d(up), [N, hidden]
};

/// y = (SiLU(x W_gate^T) ⊙ x W_up^T) W_down^T.
/// @param x [N, d] @param W_gate, W_up [hidden, d] @param W_down [d, hidden] @param cache overwritten
/// @param y resized to [N, d], overwritten (may be x: x is copied into the cache first).
/// @throws std::invalid_argument naming W_gate, W_up or W_down if a shape disagrees.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void swiglu_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W_gate, const DeviceMatrix& W_up,
                    const DeviceMatrix& W_down, SwiGluCache& cache, DeviceMatrix& y);

/// Backward of swiglu_forward: ADDS into dW_gate, dW_up, dW_down; dx = dgate W_gate + dup W_up
/// WRITTEN into dx (resized to [N, d]; the CPU twin returns it), or ADDED into it when accumulate_dx
/// is true (then already [N, d]). dx may not alias dy.
/// @throws std::invalid_argument "dy: ..." unless the forward's [N, d]; naming W_*, dW_* or dx on a
///         shape mismatch.
void swiglu_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& W_gate, const DeviceMatrix& W_up,
                     const DeviceMatrix& W_down, SwiGluCache& cache, DeviceMatrix& dW_gate, DeviceMatrix& dW_up,
                     DeviceMatrix& dW_down, DeviceMatrix& dx, bool accumulate_dx = false);

}  // namespace loglinear::cuda::nn
