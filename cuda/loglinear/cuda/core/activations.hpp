// GPU twin of reference/loglinear/core/activations.hpp (SPEC.md §7, §8, §10): the elementwise
// activation layers SiLU (the CPU's silu_forward / silu_backward), and GELU and softplus, which the
// CPU applies as unaryExpr of the scalar gelu / softplus (lambda MLP, decay parameterisations) and
// which are layers here so that those GPU twins have one kernel each to call. The formulas are the
// CPU's, through the device twins of cuda/src/core/activations.cuh (softplus as
// max(x,0) + log1p(e^-|x|), sigmoid through e^-|x|: finite for every finite input).
// One grid-stride pass each, O(size) both ways.
/// \file
/// \brief GPU twin of core/activations.hpp: SiLU, GELU and softplus layers, forward and backward
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda {

/// y = SiLU(x) = x sigmoid(x) elementwise. @param x [N, d] @param y resized to [N, d], overwritten
/// (may be x itself: the layer works in place).
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void silu_forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y);
/// Backward of silu_forward: dx = dy ⊙ SiLU'(x), WRITTEN (the CPU twin returns it).
/// @param x the forward's input [N, d] @param dy [N, d] @param dx resized to [N, d] (may be dy or x).
/// @throws std::invalid_argument "dy: expected the shape of x ..." on a mismatch.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void silu_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx);

/// y = GELU(x) = x Phi(x) (exact, erf) elementwise. @param x [N, d] @param y resized, may be x.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void gelu_forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y);
/// Backward of gelu_forward: dx = dy ⊙ (Phi(x) + x phi(x)), WRITTEN.
/// @param x [N, d] @param dy [N, d] @param dx resized to [N, d] (may be dy or x).
/// @throws std::invalid_argument "dy: expected the shape of x ..." on a mismatch.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void gelu_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx);

/// y = softplus(x) = log(1 + e^x) elementwise, stably. @param x [N, d] @param y resized, may be x.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void softplus_forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y);
/// Backward of softplus_forward: dx = dy ⊙ sigmoid(x), WRITTEN.
/// @param x [N, d] @param dy [N, d] @param dx resized to [N, d] (may be dy or x).
/// @throws std::invalid_argument "dy: expected the shape of x ..." on a mismatch.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void softplus_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx);

/// The raw-pointer forms, for operands that are not whole DeviceMatrix objects (a slice, a view):
/// `n` floats each, device pointers; y may equal x, dx may equal dy or x. n = 0 does nothing.
/// @throws std::invalid_argument "n: expected >= 0 ..." for a negative count.
void silu_forward(Context& ctx, const float* x, Index n, float* y);
/// See silu_forward(Context&, const float*, Index, float*): dx = dy ⊙ SiLU'(x).
void silu_backward(Context& ctx, const float* x, const float* dy, Index n, float* dx);
/// Raw form of gelu_forward.
void gelu_forward(Context& ctx, const float* x, Index n, float* y);
/// Raw form of gelu_backward: dx = dy ⊙ GELU'(x).
void gelu_backward(Context& ctx, const float* x, const float* dy, Index n, float* dx);
/// Raw form of softplus_forward.
void softplus_forward(Context& ctx, const float* x, Index n, float* y);
/// Raw form of softplus_backward: dx = dy ⊙ sigmoid(x).
void softplus_backward(Context& ctx, const float* x, const float* dy, Index n, float* dx);

}  // namespace loglinear::cuda
