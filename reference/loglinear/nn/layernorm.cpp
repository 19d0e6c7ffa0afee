// LayerNorm forward and backward (layernorm.hpp).
#include <loglinear/nn/layernorm.hpp>

#include <cmath>

namespace loglinear::nn {

template <class Scalar>
RowMatrix<Scalar> layernorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& gamma,
                                    const RowMatrix<Scalar>& beta, LayerNormCache<Scalar>& cache) {
  const Index N = x.rows(), d = x.cols();
  cache.xhat.resize(N, d);
  cache.rstd.resize(N);
  RowMatrix<Scalar> y(N, d);
  for (Index n = 0; n < N; ++n) {
    const Scalar mean = x.row(n).mean();
    const Scalar var = (x.row(n).array() - mean).square().mean();
    cache.rstd(n) = Scalar(1) / std::sqrt(var + Scalar(1e-5));
    cache.xhat.row(n) = (x.row(n).array() - mean) * cache.rstd(n);
    y.row(n) = cache.xhat.row(n).cwiseProduct(gamma.row(0)) + beta.row(0);
  }
  return y;
}

template <class Scalar>
RowMatrix<Scalar> layernorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& gamma,
                                     const LayerNormCache<Scalar>& cache, RowMatrix<Scalar>& dgamma,
                                     RowMatrix<Scalar>& dbeta) {
  const Index N = dy.rows(), d = dy.cols();
  dgamma.row(0) += dy.cwiseProduct(cache.xhat).colwise().sum();
  dbeta.row(0) += dy.colwise().sum();
  RowMatrix<Scalar> dx(N, d);
  for (Index n = 0; n < N; ++n) {
    // With dxhat = dy ⊙ gamma: dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat ⊙ xhat)).
    const auto dxhat = (dy.row(n).cwiseProduct(gamma.row(0))).eval();
    const Scalar m1 = dxhat.mean();
    const Scalar m2 = dxhat.cwiseProduct(cache.xhat.row(n)).mean();
    dx.row(n) = cache.rstd(n) * (dxhat.array() - m1 - cache.xhat.row(n).array() * m2);
  }
  return dx;
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                          \
  template RowMatrix<Scalar> layernorm_forward<Scalar>(                                        \
      const RowMatrix<Scalar>&, const RowMatrix<Scalar>&, const RowMatrix<Scalar>&,                  \
      LayerNormCache<Scalar>&);                                                                \
  template RowMatrix<Scalar> layernorm_backward<Scalar>(                                       \
      const RowMatrix<Scalar>&, const RowMatrix<Scalar>&, const LayerNormCache<Scalar>&,          \
      RowMatrix<Scalar>&, RowMatrix<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear::nn
