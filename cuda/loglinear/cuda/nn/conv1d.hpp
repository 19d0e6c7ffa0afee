// GPU twin of reference/loglinear/nn/conv1d.hpp: the causal depthwise conv1d of the Mamba-2 mixer
// (SPEC.md §8: Conv1d groups = channels, width W = 4, padding W - 1, keep the first T outputs),
// with bias, on [B*T, C] rows ordered (b, t); each sequence starts from zeros. Forward and dx are
// one thread per output element (coalesced over channels); dw is a deterministic two-pass reduction
// over the rows through Context::scratch, dbias a column sum (core/reduce.hpp). O(B T C W) both ways.
/// \file
/// \brief GPU twin of nn/conv1d.hpp: causal depthwise conv1d with bias, forward and backward
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda::nn {

/// y[b,t,c] = bias[c] + sum_{j=0..W-1} w[c,j] x[b, t - (W-1) + j, c], with x = 0 before t = 0.
/// @param x [B*T, C], rows ordered (b, t) @param B batch size @param w [C, W] @param bias [1, C]
/// @param y resized to [B*T, C], overwritten (may not alias x).
/// @throws std::invalid_argument naming x, w or bias when a shape disagrees (x.rows() % B, C, W >= 1),
///         as the CPU twin.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void conv1d_forward(Context& ctx, const DeviceMatrix& x, Index B, const DeviceMatrix& w, const DeviceMatrix& bias,
                    DeviceMatrix& y);

/// Backward of conv1d_forward: dw += sum_{b,t} dy[b,t,c] x[b, t-(W-1)+j, c] and dbias += sum dy
/// (both ADDED, in a fixed order); dx WRITTEN (resized to [B*T, C]; the CPU twin returns it; may not
/// alias dy or x). @param x the forward's input @param dw [C, W] @param dbias [1, C]
/// @throws std::invalid_argument "dy: ..." unless dy has x's shape, "dw"/"dbias" for their shapes,
///         and as conv1d_forward.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param B batch size (rows are B sequences of T = rows / B)
/// @param w the forward's weights [C, W]
/// @param dy gradient of the output [B*T, C]
/// @param dx gradient of the input [B*T, C], written
void conv1d_backward(Context& ctx, const DeviceMatrix& x, Index B, const DeviceMatrix& w, const DeviceMatrix& dy,
                     DeviceMatrix& dw, DeviceMatrix& dbias, DeviceMatrix& dx);

}  // namespace loglinear::cuda::nn
