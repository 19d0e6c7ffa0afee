// The one set of scalar activations (SPEC.md §7, §8, §10) and their derivatives, used by the
// lambda MLP, the decay parameterisations and the layers of nn/. Each is written so that it is
// finite for every finite input (no exp overflow): softplus as max(x,0) + log1p(e^-|x|), sigmoid
// through e^-|x|. The elementwise SiLU layer (silu_forward / silu_backward) is here too, because
// it is nothing more than the scalar function applied to a matrix.
/// \file
/// \brief The one set of scalar activations (SPEC.md §7, §8, §10) and their derivatives, used by the lambda MLP, the decay parameterisations and the layers of ...
/// \ingroup floor_core
#pragma once

#include <loglinear/core/tensor.hpp>

#include <algorithm>
#include <cmath>

namespace loglinear {

/// Logistic sigmoid 1 / (1 + e^-x), computed through e^-|x| so that it never overflows.
template <class Scalar>
Scalar sigmoid(Scalar x) {
  const Scalar e = std::exp(-std::abs(x));
  return x >= 0 ? Scalar(1) / (Scalar(1) + e) : e / (Scalar(1) + e);
}
/// Numerically stable softplus log(1 + e^x) = max(x,0) + log1p(e^-|x|) (SPEC.md §10).
/// Its derivative is sigmoid(x).
template <class Scalar>
Scalar softplus(Scalar x) {
  return std::max(x, Scalar(0)) + std::log1p(std::exp(-std::abs(x)));
}
/// Inverse of softplus for y > 0: y + log(-expm1(-y)).
template <class Scalar>
Scalar softplus_inverse(Scalar y) {
  return y + std::log(-std::expm1(-y));
}
/// log sigmoid(x) = -softplus(-x), finite for every finite x (SPEC.md §10).
template <class Scalar>
Scalar log_sigmoid(Scalar x) {
  return -softplus(-x);
}
/// Exact (erf) GELU: x Phi(x).
template <class Scalar>
Scalar gelu(Scalar x) {
  return Scalar(0.5) * x * (Scalar(1) + std::erf(x / std::sqrt(Scalar(2))));
}
/// Derivative of the exact GELU: Phi(x) + x phi(x).
template <class Scalar>
Scalar gelu_grad(Scalar x) {
  const Scalar Phi = Scalar(0.5) * (Scalar(1) + std::erf(x / std::sqrt(Scalar(2))));
  const Scalar phi = std::exp(Scalar(-0.5) * x * x) / std::sqrt(Scalar(2 * M_PI));
  return Phi + x * phi;
}
/// SiLU(x) = x sigmoid(x).
template <class Scalar>
Scalar silu(Scalar x) {
  return x * sigmoid(x);
}
/// d SiLU / dx = sigmoid(x) (1 + x (1 - sigmoid(x))).
template <class Scalar>
Scalar silu_grad(Scalar x) {
  const Scalar s = sigmoid(x);
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

}  // namespace loglinear
