// Parameter initialisers, the one place where trainable tensors get their random starting values
// (every model, lambda mode and decay draws through these, so a seed means the same thing
// everywhere). Draws are taken in double and rounded to Scalar, so float and double models built
// from the same seed start from the same values up to rounding.
/// \file
/// \brief Parameter initialisers, the one place where trainable tensors get their random starting values (every model, lambda mode and decay draws through ...
/// \ingroup floor_core
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cmath>
#include <random>

namespace loglinear {

/// A [rows, cols] matrix of independent N(0, std^2) draws from `rng`, row-major order.
template <class Scalar>
RowMatrix<Scalar> init_normal(Index rows, Index cols, double std, std::mt19937_64& rng) {
  std::normal_distribution<double> n(0.0, std);
  RowMatrix<Scalar> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = Scalar(n(rng));
  return m;
}

/// Xavier/Glorot uniform for a [fan_out, fan_in] weight: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
template <class Scalar>
RowMatrix<Scalar> init_xavier_uniform(Index fan_out, Index fan_in, std::mt19937_64& rng) {
  const double a = std::sqrt(6.0 / double(fan_in + fan_out));
  std::uniform_real_distribution<double> u(-a, a);
  RowMatrix<Scalar> m(fan_out, fan_in);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = Scalar(u(rng));
  return m;
}

}  // namespace loglinear
