// RMSNorm and gated RMSNorm (SPEC.md §8), forward then backward; O(N d). The normalisation is
// taken per group of d / groups features, as fla's gated norm does with n_groups > 1.
#include <loglinear/core/activations.hpp>
#include <loglinear/nn/rmsnorm.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace loglinear::nn {
namespace {
std::string shape(Index r, Index c) { return "[" + std::to_string(r) + "," + std::to_string(c) + "]"; }
}  // namespace

template <class Scalar>
RowMatrix<Scalar> rmsnorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& w,
                                  RmsNormCache<Scalar>& cache, Index groups, Scalar eps) {
  const Index N = x.rows(), d = x.cols();
  if (w.rows() != 1 || w.cols() != d)
    throw std::invalid_argument("w: expected shape [1, d] = " + shape(1, d) + ", got " + shape(w.rows(), w.cols()));
  if (groups < 1 || d % groups != 0)
    throw std::invalid_argument("groups: expected a divisor of d = " + std::to_string(d) + ", got " +
                                std::to_string(groups));
  const Index gs = d / groups;
  cache.xhat.resize(N, d);
  cache.rstd.resize(N, groups);
  for (Index n = 0; n < N; ++n)
    for (Index gr = 0; gr < groups; ++gr) {
      const auto xs = x.row(n).segment(gr * gs, gs);
      const Scalar r = Scalar(1) / std::sqrt(xs.squaredNorm() / Scalar(gs) + eps);
      cache.rstd(n, gr) = r;
      cache.xhat.row(n).segment(gr * gs, gs) = xs * r;
    }
  return cache.xhat.array().rowwise() * w.row(0).array();
}

template <class Scalar>
RowMatrix<Scalar> rmsnorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& w,
                                   const RmsNormCache<Scalar>& cache, RowMatrix<Scalar>& dw) {
  const Index N = dy.rows(), d = dy.cols(), groups = cache.rstd.cols(), gs = d / groups;
  if (dy.rows() != cache.xhat.rows() || dy.cols() != cache.xhat.cols())
    throw std::invalid_argument("dy: expected the forward's shape " + shape(cache.xhat.rows(), cache.xhat.cols()) +
                                ", got " + shape(N, d));
  // forward: y = xhat w, so dw += sum_n dy xhat.
  dw.row(0) += dy.cwiseProduct(cache.xhat).colwise().sum();
  // forward: xhat = x r, r = (mean(x^2) + eps)^-1/2, so with dxhat = dy w:
  // dx = r (dxhat - xhat mean(dxhat xhat)), per group.
  RowMatrix<Scalar> dxhat = dy.array().rowwise() * w.row(0).array();
  RowMatrix<Scalar> dx(N, d);
  for (Index n = 0; n < N; ++n)
    for (Index gr = 0; gr < groups; ++gr) {
      const auto dxh = dxhat.row(n).segment(gr * gs, gs);
      const auto xh = cache.xhat.row(n).segment(gr * gs, gs);
      const Scalar m = dxh.dot(xh) / Scalar(gs);
      dx.row(n).segment(gr * gs, gs) = cache.rstd(n, gr) * (dxh - m * xh);
    }
  return dx;
}

template <class Scalar>
RowMatrix<Scalar> gated_rmsnorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& z,
                                        const RowMatrix<Scalar>& w, GatedRmsNormCache<Scalar>& cache,
                                        Index groups, Scalar eps) {
  if (z.rows() != x.rows() || z.cols() != x.cols())
    throw std::invalid_argument("z: expected the shape of x " + shape(x.rows(), x.cols()) + ", got " +
                                shape(z.rows(), z.cols()));
  cache.x = x;
  cache.z = z;
  // norm_before_gate = False: the gate multiplies before the norm.
  return rmsnorm_forward<Scalar>(x.cwiseProduct(silu_forward(z)), w, cache.norm, groups, eps);
}

template <class Scalar>
void gated_rmsnorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& w,
                            const GatedRmsNormCache<Scalar>& cache, RowMatrix<Scalar>& dw,
                            RowMatrix<Scalar>& dx, RowMatrix<Scalar>& dz) {
  const RowMatrix<Scalar> dgated = rmsnorm_backward(dy, w, cache.norm, dw);
  // forward: gated = x ⊙ SiLU(z).
  dx = dgated.cwiseProduct(silu_forward(cache.z));
  dz = silu_backward(cache.z, RowMatrix<Scalar>(dgated.cwiseProduct(cache.x)));
}

#define LOGLINEAR_INSTANTIATE(S)                                                                        \
  template RowMatrix<S> rmsnorm_forward<S>(const RowMatrix<S>&, const RowMatrix<S>&, RmsNormCache<S>&,  \
                                           Index, S);                                                   \
  template RowMatrix<S> rmsnorm_backward<S>(const RowMatrix<S>&, const RowMatrix<S>&,                   \
                                            const RmsNormCache<S>&, RowMatrix<S>&);                     \
  template RowMatrix<S> gated_rmsnorm_forward<S>(const RowMatrix<S>&, const RowMatrix<S>&,              \
                                                 const RowMatrix<S>&, GatedRmsNormCache<S>&, Index, S); \
  template void gated_rmsnorm_backward<S>(const RowMatrix<S>&, const RowMatrix<S>&,                     \
                                          const GatedRmsNormCache<S>&, RowMatrix<S>&, RowMatrix<S>&,    \
                                          RowMatrix<S>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::nn
