// The small layers of the synthetic-task model (SPEC.md §8, last paragraph), each a
// forward/backward pair in the style of llm.c. Activations are row-major [N, features] matrices
// with N = B*T rows (the [B,T,H,D] layout of the operator, flattened). Backward functions ADD
// into parameter gradients and RETURN (or overwrite) the input gradient.
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cmath>

namespace loglinear::models {

/// Numerically stable softplus log(1 + e^x) (SPEC.md §10: max(x,0) + log1p(e^-|x|)).
template <class Scalar>
Scalar softplus(Scalar x) {
  return std::max(x, Scalar(0)) + std::log1p(std::exp(-std::abs(x)));
}
/// Logistic sigmoid, the derivative of softplus.
template <class Scalar>
Scalar sigmoid(Scalar x) {
  return x >= 0 ? Scalar(1) / (Scalar(1) + std::exp(-x)) : std::exp(x) / (Scalar(1) + std::exp(x));
}
/// Inverse of softplus for y > 0: y + log(-expm1(-y)).
template <class Scalar>
Scalar softplus_inverse(Scalar y) {
  return y + std::log(-std::expm1(-y));
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

/// Linear layer without bias: y = x W^T.
/// @param x [N, in]  @param W [out, in]  @return y [N, out]
template <class Scalar>
RowMatrix<Scalar> linear_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& W) {
  return x * W.transpose();
}
/// Backward of linear_forward: dW += dy^T x; returns dx = dy W.
template <class Scalar>
RowMatrix<Scalar> linear_backward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& W,
                                  const RowMatrix<Scalar>& dy, RowMatrix<Scalar>& dW) {
  dW.noalias() += dy.transpose() * x;
  return dy * W;
}

/// What layernorm_backward needs from the forward.
template <class Scalar>
struct LayerNormCache {
  RowMatrix<Scalar> xhat;  ///< (x - mean) * rstd, [N, d]
  Vector<Scalar> rstd;     ///< 1 / sqrt(var + eps), [N]
};

/// LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * gamma + beta, eps = 1e-5.
/// @param x [N, d]  @param gamma, beta [1, d]
/// @param cache overwritten with what layernorm_backward needs.  @return y [N, d].
template <class Scalar>
RowMatrix<Scalar> layernorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& gamma,
                                    const RowMatrix<Scalar>& beta, LayerNormCache<Scalar>& cache);
/// Backward of layernorm_forward: dgamma += sum_n dy xhat, dbeta += sum_n dy; returns dx.
template <class Scalar>
RowMatrix<Scalar> layernorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& gamma,
                                     const LayerNormCache<Scalar>& cache, RowMatrix<Scalar>& dgamma,
                                     RowMatrix<Scalar>& dbeta);

/// Mean softmax cross-entropy over the scored rows (target >= 0) and its gradient.
///
/// @param logits [N, vocab]; @param targets [N], -1 = not scored.
/// @param dlogits overwritten with d(mean loss)/d(logits) (zero on unscored rows).
/// @param correct if not null, receives the number of scored rows whose argmax is the target.
/// @return the mean loss in nats (0 if nothing is scored).
template <class Scalar>
double cross_entropy(const RowMatrix<Scalar>& logits, const std::int32_t* targets,
                     RowMatrix<Scalar>* dlogits, Index* correct = nullptr);

}  // namespace loglinear::models
