// One comparison helper for every cross-check: normwise relative error
// max_i |a_i - e_i| / max(max_j |e_j|, floor), with the worst index and both values there.
// Normwise (relative to the largest expected entry) rather than elementwise, because single
// entries of an output can cancel to ~0 while their rounding error stays at the scale of the
// terms that cancelled.
#pragma once

#include <loglinear/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

namespace loglinear::test {

/// Result of compare(): the error, where it is worst, and a printable report.
struct Comparison {
  double max_rel = 0;   ///< max |a - e| / scale
  double mean_rel = 0;  ///< mean |a - e| / scale
  double scale = 0;     ///< max(max |e|, floor)
  Index worst = -1;     ///< flat index of the worst element
  double actual_at_worst = 0, expected_at_worst = 0;
  std::string name;
  /// "name: max rel 1e-12 (mean 3e-14) at flat index 17: actual 0.5 expected 0.5000001".
  std::string report() const {
    std::ostringstream os;
    os.precision(17);
    os << name << ": max rel " << max_rel << " (mean " << mean_rel << ", scale " << scale
       << ") at flat index " << worst << ": actual " << actual_at_worst << " expected "
       << expected_at_worst;
    return os.str();
  }
};

/// Compares `actual` with `expected` elementwise (same number of elements required).
template <class A, class E>
Comparison compare(const std::string& name, const A* actual, const E* expected, Index n,
                   double floor = 1e-30) {
  Comparison c;
  c.name = name;
  double emax = 0;
  for (Index i = 0; i < n; ++i) emax = std::max(emax, std::abs(double(expected[i])));
  c.scale = std::max(emax, floor);
  double sum = 0;
  for (Index i = 0; i < n; ++i) {
    const double err = std::abs(double(actual[i]) - double(expected[i])) / c.scale;
    if (!(err <= c.max_rel)) {  // also catches NaN
      c.max_rel = std::isnan(err) ? INFINITY : err;
      c.worst = i;
      c.actual_at_worst = double(actual[i]);
      c.expected_at_worst = double(expected[i]);
    }
    sum += err;
  }
  c.mean_rel = n ? sum / double(n) : 0;
  return c;
}

/// compare() for two tensors of the same shape.
template <class A, class E, int Rank>
Comparison compare(const std::string& name, const Tensor<A, Rank>& actual,
                   const Tensor<E, Rank>& expected, double floor = 1e-30) {
  if (actual.shape() != expected.shape()) {
    Comparison c;
    c.name = name + " (shape mismatch " + shape_string<Rank>(actual.shape()) + " vs " +
             shape_string<Rank>(expected.shape()) + ")";
    c.max_rel = INFINITY;
    return c;
  }
  return compare(name, actual.data(), expected.data(), actual.size(), floor);
}

}  // namespace loglinear::test
