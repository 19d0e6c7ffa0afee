// GPU twin of reference/loglinear/nn/linear.hpp: y = x W^T (+ b) and its backward, on cuBLAS.
// Why cuBLAS rather than cuBLASLt or our own kernel: these GEMMs are plain float32 row-major
// products with a bias at most, which cublasSgemm covers in one call per product, deterministically
// (no atomics by default) and at the library's tuned speed; cuBLASLt's epilogue fusion (bias, GELU)
// would save one elementwise pass per layer, which is not where a step of these models spends its
// time (the attention operator and the launches are; bench/RESULTS-gpu.md). Row-major matrices
// are handed to column-major cuBLAS as their transposes, so no data is ever transposed.
// Cost O(N in out) each way.
/// \file
/// \brief GPU twin of nn/linear.hpp: y = x W^T (+ b) and its backward, on cuBLAS
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda::nn {

/// y = x W^T. @param x [N, in] @param W [out, in] @param y resized to [N, out], overwritten.
/// @throws std::invalid_argument "W: expected [out, in] with in = x.cols() = ..." on a mismatch.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void linear_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, DeviceMatrix& y);
/// y = x W^T + b (b broadcast over rows). @param b [1, out]. Throws as above, and "b: ..." for its shape.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param x input [N, in]
/// @param W weights [out, in]
/// @param y output, resized to [N, out]
void linear_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, const DeviceMatrix& b,
                    DeviceMatrix& y);

/// Backward of linear_forward: dW += dy^T x (ADDED, as the CPU twin) and dx = dy W, written into
/// dx (resized to [N, in]) or, when accumulate_dx is true, ADDED into dx (then already [N, in]).
/// @throws std::invalid_argument naming dy, dW or dx on a shape mismatch.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param dx gradient of x [N, in], written (or ADDED, see accumulate_dx)
/// @param accumulate_dx ADD into dx (already of x's shape) instead of overwriting it
/// @param x the forward's input [N, in] @param W [out, in] @param dy [N, out] @param dW [out, in]
void linear_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, const DeviceMatrix& dy,
                     DeviceMatrix& dW, DeviceMatrix& dx, bool accumulate_dx = false);
/// linear_backward plus db += sum over rows of dy (a deterministic column sum). @param db [1, out].
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param x the forward's input [N, in]
/// @param W the weights [out, in]
/// @param dy gradient of y [N, out]
/// @param dW gradient of W [out, in], ADDED into
/// @param dx gradient of x [N, in], written (or ADDED, see accumulate_dx)
/// @param accumulate_dx ADD into dx (already of x's shape) instead of overwriting it
void linear_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, const DeviceMatrix& dy,
                     DeviceMatrix& dW, DeviceMatrix& db, DeviceMatrix& dx, bool accumulate_dx = false);

/// The raw row-major GEMM behind the layer: C[m, n] = alpha op(A) op(B) + beta C, with op(A) = A or
/// A^T as transA says, A, B, C row-major device pointers with leading dimensions = their column
/// counts. For layers whose operands are not whole DeviceMatrix objects (a head's slice, a
/// reshaped view).
/// @param transA, transB whether A ([k, m] when transposed, else [m, k]) and B ([n, k] / [k, n]) are transposed
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param m rows of C
/// @param n columns of C
/// @param k the summed dimension
/// @param alpha scale of the product
/// @param A row-major device matrix, [m, k] (or [k, m] if transA)
/// @param B row-major device matrix, [k, n] (or [n, k] if transB)
/// @param beta scale of C's old value (0: C is overwritten)
/// @param C row-major [m, n] device matrix, the result
void gemm(Context& ctx, bool transA, bool transB, Index m, Index n, Index k, float alpha, const float* A,
          const float* B, float beta, float* C);

}  // namespace loglinear::cuda::nn
