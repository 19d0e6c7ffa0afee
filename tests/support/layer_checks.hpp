// Shared pieces of the layer tests (tests/nn, tests/decay, tests/lambda, tests/train): seeded random matrices,
// a random linear functional of a layer's output, and the finite-difference bound of issue 5.
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cstdint>
#include <random>

namespace loglinear::test {

/// r x c matrix of N(0, scale^2) entries from mt19937_64(seed).
inline RowMatrix<double> random_matrix(Index r, Index c, std::uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0, scale);
  RowMatrix<double> m(r, c);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
  return m;
}

/// sum(a ⊙ w): a random linear functional of a layer's output `a`, whose gradient w.r.t. a is w.
inline double weighted_sum(const RowMatrix<double>& a, const RowMatrix<double>& w) {
  return a.cwiseProduct(w).sum();
}

/// 1e-6 (the bound): eps 1e-6 central differences of a summed O(1) loss carry ~1e-10
/// absolute roundoff, which is ~1e-7 relative on entries near gradcheck's floor.
constexpr double kFdTol = 1e-6;

}  // namespace loglinear::test

/// CHECKs a gradcheck result against kFdTol, printing its report (worst element) on failure.
#define CHECK_FD(r)                            \
  do {                                         \
    const auto rr = (r);                       \
    INFO(rr.report());                         \
    CHECK(rr.max_rel <= ::loglinear::test::kFdTol); \
  } while (0)
