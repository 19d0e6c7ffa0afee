// Causal depthwise conv1d (SPEC.md §8), forward then backward; the direct O(B T C W) loops,
// which for W = 4 beat any transform. The CUDA path would fuse it with SiLU.
#include <loglinear/nn/conv1d.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::nn {
namespace {
std::string shape(Index r, Index c) { return "[" + std::to_string(r) + "," + std::to_string(c) + "]"; }

template <class Scalar>
void check_conv(const RowMatrix<Scalar>& x, Index B, const RowMatrix<Scalar>& w, const RowMatrix<Scalar>& bias) {
  if (B < 1 || x.rows() % B != 0)
    throw std::invalid_argument("x: expected shape [B*T, C] with rows divisible by B = " + std::to_string(B) +
                                ", got " + shape(x.rows(), x.cols()));
  if (w.rows() != x.cols() || w.cols() < 1)
    throw std::invalid_argument("w: expected shape [C, W] with C = " + std::to_string(x.cols()) +
                                " and W >= 1, got " + shape(w.rows(), w.cols()));
  if (bias.rows() != 1 || bias.cols() != x.cols())
    throw std::invalid_argument("bias: expected shape [1, C] = " + shape(1, x.cols()) + ", got " +
                                shape(bias.rows(), bias.cols()));
}
}  // namespace

template <class Scalar>
RowMatrix<Scalar> conv1d_forward(const RowMatrix<Scalar>& x, Index B, const RowMatrix<Scalar>& w,
                                 const RowMatrix<Scalar>& bias) {
  check_conv(x, B, w, bias);
  const Index T = x.rows() / B, W = w.cols();
  RowMatrix<Scalar> y = bias.replicate(x.rows(), 1);
  // Tap j reads x at t - (W-1) + j: the last tap (j = W-1) is the current token.
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index j = 0; j < W; ++j) {
        const Index s = t - (W - 1) + j;
        if (s < 0) continue;
        y.row(b * T + t) += w.col(j).transpose().cwiseProduct(x.row(b * T + s));
      }
  return y;
}

template <class Scalar>
RowMatrix<Scalar> conv1d_backward(const RowMatrix<Scalar>& x, Index B, const RowMatrix<Scalar>& w,
                                  const RowMatrix<Scalar>& dy, RowMatrix<Scalar>& dw, RowMatrix<Scalar>& dbias) {
  if (dy.rows() != x.rows() || dy.cols() != x.cols())
    throw std::invalid_argument("dy: expected the shape of x " + shape(x.rows(), x.cols()) + ", got " +
                                shape(dy.rows(), dy.cols()));
  const Index T = x.rows() / B, W = w.cols();
  RowMatrix<Scalar> dx = RowMatrix<Scalar>::Zero(x.rows(), x.cols());
  // forward: y_t += w[:,j] ⊙ x_s with s = t - (W-1) + j, hence dx_s += w[:,j] ⊙ dy_t and dw[:,j] += dy_t ⊙ x_s.
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index j = 0; j < W; ++j) {
        const Index s = t - (W - 1) + j;
        if (s < 0) continue;
        dx.row(b * T + s) += w.col(j).transpose().cwiseProduct(dy.row(b * T + t));
        dw.col(j) += dy.row(b * T + t).cwiseProduct(x.row(b * T + s)).transpose();
      }
  dbias.row(0) += dy.colwise().sum();
  return dx;
}

#define LOGLINEAR_INSTANTIATE(S)                                                                      \
  template RowMatrix<S> conv1d_forward<S>(const RowMatrix<S>&, Index, const RowMatrix<S>&,            \
                                          const RowMatrix<S>&);                                       \
  template RowMatrix<S> conv1d_backward<S>(const RowMatrix<S>&, Index, const RowMatrix<S>&,           \
                                           const RowMatrix<S>&, RowMatrix<S>&, RowMatrix<S>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::nn
