// Linear layer without bias, y = x W^T, as a forward/backward pair in the llm.c style.
// Activations are row-major [N, features] matrices with N = B*T rows (the [B,T,H,D] layout of the
// operator, flattened). Cost O(N in out) both ways; Eigen's GEMM does the work.
/// \file
/// \brief Linear layer without bias, y = x W^T, as a forward/backward pair in the llm.c style.
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear::nn {

/// Linear layer without bias: y = x W^T.
/// @param x [N, in]  @param W [out, in]  @return y [N, out]
template <class Scalar>
RowMatrix<Scalar> linear_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& W) {
  return x * W.transpose();
}
/// Backward of linear_forward. forward: y = x W^T, hence dW += dy^T x (ADDED) and dx = dy W
/// (RETURNED).
template <class Scalar>
RowMatrix<Scalar> linear_backward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& W,
                                  const RowMatrix<Scalar>& dy, RowMatrix<Scalar>& dW) {
  dW.noalias() += dy.transpose() * x;
  return dy * W;
}

}  // namespace loglinear::nn
