// Elementwise activations of the Mamba-2 layer and its MLP (SPEC.md §8): SiLU as
// forward/backward pairs on [N, d] matrices. Exact-erf GELU and softplus are in models/layers.hpp.
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cmath>

namespace loglinear::nn {

/// SiLU(x) = x sigmoid(x), elementwise. Overflow-free for |x| large (sigmoid via exp(-|x|)).
template <class Scalar>
Scalar silu(Scalar x) {
  const Scalar e = std::exp(-std::abs(x));
  const Scalar s = x >= 0 ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
  return x * s;
}
/// d SiLU / dx = sigmoid(x) (1 + x (1 - sigmoid(x))).
template <class Scalar>
Scalar silu_grad(Scalar x) {
  const Scalar e = std::exp(-std::abs(x));
  const Scalar s = x >= 0 ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
  return s * (Scalar(1) + x * (Scalar(1) - s));
}
/// y = SiLU(x) elementwise, x [N, d] -> y [N, d]. Backward needs x itself (no extra cache).
template <class Scalar>
RowMatrix<Scalar> silu_forward(const RowMatrix<Scalar>& x) {
  return x.unaryExpr([](Scalar v) { return silu(v); });
}
/// Backward of silu_forward: RETURNS dx = dy ⊙ SiLU'(x).
template <class Scalar>
RowMatrix<Scalar> silu_backward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& dy) {
  return dy.cwiseProduct(x.unaryExpr([](Scalar v) { return silu_grad(v); }));
}

}  // namespace loglinear::nn
