// L2 normalisation per group (l2norm.hpp), forward then backward; O(N d).
#include <loglinear/nn/l2norm.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace loglinear::nn {
namespace {
std::string shape(Index r, Index c) { return "[" + std::to_string(r) + "," + std::to_string(c) + "]"; }
}  // namespace

template <class Scalar>
RowMatrix<Scalar> l2norm_forward(const RowMatrix<Scalar>& x, L2NormCache<Scalar>& cache, Index groups, Scalar eps) {
  const Index N = x.rows(), d = x.cols();
  if (groups < 1 || d % groups != 0)
    throw std::invalid_argument("groups: expected a divisor of d = " + std::to_string(d) + ", got " +
                                std::to_string(groups));
  const Index gs = d / groups;
  cache.y.resize(N, d);
  cache.rstd.resize(N, groups);
  for (Index n = 0; n < N; ++n)
    for (Index gr = 0; gr < groups; ++gr) {
      const auto xs = x.row(n).segment(gr * gs, gs);
      const Scalar r = Scalar(1) / std::sqrt(xs.squaredNorm() + eps);
      cache.rstd(n, gr) = r;
      cache.y.row(n).segment(gr * gs, gs) = xs * r;
    }
  return cache.y;
}

template <class Scalar>
RowMatrix<Scalar> l2norm_backward(const RowMatrix<Scalar>& dy, const L2NormCache<Scalar>& cache) {
  const Index N = dy.rows(), d = dy.cols();
  if (N != cache.y.rows() || d != cache.y.cols())
    throw std::invalid_argument("dy: expected the forward's shape " + shape(cache.y.rows(), cache.y.cols()) +
                                ", got " + shape(N, d));
  const Index groups = cache.rstd.cols(), gs = d / groups;
  // forward: y = x r with r = (|x|^2 + eps)^-1/2, dr/dx = -r^3 x = -r^2 y, so
  // dx = r dy - r y <dy, y>, per group.
  RowMatrix<Scalar> dx(N, d);
  for (Index n = 0; n < N; ++n)
    for (Index gr = 0; gr < groups; ++gr) {
      const auto dys = dy.row(n).segment(gr * gs, gs);
      const auto ys = cache.y.row(n).segment(gr * gs, gs);
      dx.row(n).segment(gr * gs, gs) = cache.rstd(n, gr) * (dys - dys.dot(ys) * ys);
    }
  return dx;
}

#define LOGLINEAR_INSTANTIATE(S)                                                                   \
  template RowMatrix<S> l2norm_forward<S>(const RowMatrix<S>&, L2NormCache<S>&, Index, S); \
  template RowMatrix<S> l2norm_backward<S>(const RowMatrix<S>&, const L2NormCache<S>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::nn
