// Elementwise helpers of the GPU models that have no layer of their own on the CPU (there they are
// one Eigen expression, e.g. the residual `linear_forward(o, Wo) + x`). O(size) each.
/// \file
/// \brief Elementwise helpers of the GPU models (residual adds)
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda {

/// y[r, c] += b[c] for every row r: a bias broadcast over the rows of a row-major [rows, cols] matrix.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param y device pointer of rows * cols floats @param b device pointer of cols floats
/// @param rows rows of y @param cols columns of y
void add_bias(Context& ctx, float* y, const float* b, Index rows, Index cols);

/// dst[0 .. n) = src[0 .. n), device to device, queued on ctx's stream.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param dst, src device pointers of n floats @param n count (nothing happens for n <= 0)
void copy_device(Context& ctx, float* dst, const float* src, Index n);
/// to = from: resizes `to` to from's shape and copies the values, device to device.
/// @param ctx the context the copy is queued on @param from the source @param to the destination
void copy(Context& ctx, const DeviceMatrix& from, DeviceMatrix& to);

/// y += x (same shape). @throws std::invalid_argument "x: expected the shape of y ..." otherwise.
void add_into(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y);

}  // namespace loglinear::cuda
