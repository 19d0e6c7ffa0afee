// Central finite differences in double precision against an analytic gradient.
// Relative error per element: |analytic - numeric| / max(|analytic|, |numeric|, floor), with
// floor = floor_rel * max_i |analytic_i| so that entries that are ~0 by cancellation are judged
// at the tensor's own scale. Reports the worst element and its index.
#pragma once

#include <loglinear/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace loglinear::test {

/// Outcome of one gradient check.
struct GradCheck {
  std::string name;
  double max_rel = 0;  ///< worst relative error over the checked elements
  Index worst = -1;    ///< flat index of the worst element
  double analytic = 0, numeric = 0;  ///< both values at the worst element
  Index checked = 0;   ///< number of elements checked
  /// Printable summary for failure messages.
  std::string report() const {
    std::ostringstream os;
    os.precision(12);
    os << name << ": max rel " << max_rel << " over " << checked << " elements, worst at flat index "
       << worst << ": analytic " << analytic << " numeric " << numeric;
    return os.str();
  }
};

/// Checks `analytic` (n entries) against central differences of `loss()` w.r.t. x[0..n).
///
/// @param x          the input being perturbed (restored afterwards)
/// @param loss       callable returning the scalar loss (double) at the current x
/// @param eps        step; central differences have O(eps^2) truncation error
/// @param max_checks at most this many elements (a random sample, always including index 0
///                   and n-1) are checked, to bound the cost on large tensors
template <class Loss>
GradCheck gradcheck(const std::string& name, double* x, const double* analytic, Index n,
                    Loss&& loss, double eps = 1e-6, Index max_checks = 48,
                    std::uint64_t seed = 1, double floor_rel = 1e-3) {
  GradCheck r;
  r.name = name;
  std::vector<Index> idx(n);
  std::iota(idx.begin(), idx.end(), Index{0});
  if (n > max_checks) {
    std::mt19937_64 rng(seed);
    std::shuffle(idx.begin() + 1, idx.end() - 1, rng);
    idx.resize(max_checks - 1);
    idx.push_back(n - 1);
  }
  double amax = 0;
  for (Index i = 0; i < n; ++i) amax = std::max(amax, std::abs(analytic[i]));
  const double floor = std::max(floor_rel * amax, 1e-12);
  for (Index i : idx) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double up = loss();
    x[i] = saved - eps;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * eps);
    const double err = std::abs(analytic[i] - numeric) /
                       std::max({std::abs(analytic[i]), std::abs(numeric), floor});
    if (!(err <= r.max_rel)) {
      r.max_rel = std::isnan(err) ? INFINITY : err;
      r.worst = i;
      r.analytic = analytic[i];
      r.numeric = numeric;
    }
    ++r.checked;
  }
  return r;
}

}  // namespace loglinear::test
