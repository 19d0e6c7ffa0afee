// SwiGLU MLP (SPEC.md §8, fla GatedMLP), forward then backward: three bias-free matmuls around
// an elementwise gate. Matmul cost dominates: 3 N d hidden multiply-adds each way (x2 backward).
#include <loglinear/core/activations.hpp>
#include <loglinear/nn/swiglu.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::nn {
namespace {
std::string shape(Index r, Index c) { return "[" + std::to_string(r) + "," + std::to_string(c) + "]"; }
}  // namespace

template <class Scalar>
RowMatrix<Scalar> swiglu_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& W_gate,
                                 const RowMatrix<Scalar>& W_up, const RowMatrix<Scalar>& W_down,
                                 SwiGluCache<Scalar>& cache) {
  const Index d = x.cols(), hidden = W_gate.rows();
  if (W_gate.cols() != d)
    throw std::invalid_argument("W_gate: expected shape [hidden, d] with d = " + std::to_string(d) + ", got " +
                                shape(W_gate.rows(), W_gate.cols()));
  if (W_up.rows() != hidden || W_up.cols() != d)
    throw std::invalid_argument("W_up: expected shape [hidden, d] = " + shape(hidden, d) + ", got " +
                                shape(W_up.rows(), W_up.cols()));
  if (W_down.rows() != d || W_down.cols() != hidden)
    throw std::invalid_argument("W_down: expected shape [d, hidden] = " + shape(d, hidden) + ", got " +
                                shape(W_down.rows(), W_down.cols()));
  cache.x = x;
  cache.gate.noalias() = x * W_gate.transpose();
  cache.up.noalias() = x * W_up.transpose();
  cache.h = silu_forward(cache.gate).cwiseProduct(cache.up);
  return cache.h * W_down.transpose();
}

template <class Scalar>
RowMatrix<Scalar> swiglu_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& W_gate,
                                  const RowMatrix<Scalar>& W_up, const RowMatrix<Scalar>& W_down,
                                  const SwiGluCache<Scalar>& cache, RowMatrix<Scalar>& dW_gate,
                                  RowMatrix<Scalar>& dW_up, RowMatrix<Scalar>& dW_down) {
  if (dy.rows() != cache.x.rows() || dy.cols() != cache.x.cols())
    throw std::invalid_argument("dy: expected the forward's shape " + shape(cache.x.rows(), cache.x.cols()) +
                                ", got " + shape(dy.rows(), dy.cols()));
  // forward: y = h W_down^T, h = SiLU(gate) ⊙ up, gate = x W_gate^T, up = x W_up^T.
  dW_down.noalias() += dy.transpose() * cache.h;
  const RowMatrix<Scalar> dh = dy * W_down;
  const RowMatrix<Scalar> dup = dh.cwiseProduct(silu_forward(cache.gate));
  const RowMatrix<Scalar> dgate = silu_backward(cache.gate, RowMatrix<Scalar>(dh.cwiseProduct(cache.up)));
  dW_gate.noalias() += dgate.transpose() * cache.x;
  dW_up.noalias() += dup.transpose() * cache.x;
  return dgate * W_gate + dup * W_up;
}

#define LOGLINEAR_INSTANTIATE(S)                                                                         \
  template RowMatrix<S> swiglu_forward<S>(const RowMatrix<S>&, const RowMatrix<S>&, const RowMatrix<S>&, \
                                          const RowMatrix<S>&, SwiGluCache<S>&);                         \
  template RowMatrix<S> swiglu_backward<S>(const RowMatrix<S>&, const RowMatrix<S>&, const RowMatrix<S>&, \
                                           const RowMatrix<S>&, const SwiGluCache<S>&, RowMatrix<S>&,    \
                                           RowMatrix<S>&, RowMatrix<S>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::nn
