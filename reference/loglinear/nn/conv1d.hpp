// Causal depthwise conv1d of the Mamba-2 mixer (SPEC.md §8: Conv1d groups = channels, width 4,
// padding width - 1, keep the first T outputs), a forward/backward pair on [B*T, C] rows.
// O(B T C W) both ways; nothing to cache beyond the input.
/// \file
/// \brief Causal depthwise conv1d of the Mamba-2 mixer (SPEC.md §8)
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear::nn {

/// y[b,t,c] = bias[c] + sum_{j=0..W-1} w[c,j] x[b, t - (W-1) + j, c], with x = 0 before t = 0
/// (each sequence starts fresh: no state crosses the batch).
/// @param x [B*T, C], rows ordered (b, t); @param B batch size; @param w [C, W]; @param bias [1, C].
/// @return y [B*T, C].
/// @throws std::invalid_argument naming x, w or bias when a shape disagrees (x.rows() % B, C, W >= 1).
template <class Scalar>
RowMatrix<Scalar> conv1d_forward(const RowMatrix<Scalar>& x, Index B, const RowMatrix<Scalar>& w,
                                 const RowMatrix<Scalar>& bias);

/// Backward of conv1d_forward: dw += ..., dbias += sum dy; RETURNS dx [B*T, C].
/// @throws std::invalid_argument "dy: ..." if dy's shape differs from x's.
template <class Scalar>
RowMatrix<Scalar> conv1d_backward(const RowMatrix<Scalar>& x, Index B, const RowMatrix<Scalar>& w,
                                  const RowMatrix<Scalar>& dy, RowMatrix<Scalar>& dw, RowMatrix<Scalar>& dbias);

}  // namespace loglinear::nn
