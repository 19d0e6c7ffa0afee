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

/// Tensors of at most this many elements are worth checking in full (the attention tests pass it
/// as `check_all_up_to`): one loss evaluation per element stays cheap at the tests' sizes.
inline constexpr Index kCheckAllUpTo = 256;

/// Checks `analytic` (n entries) against central differences of `loss()` w.r.t. x[0..n).
///
/// @param x          the input being perturbed (restored afterwards)
/// @param loss       callable returning the scalar loss (double) at the current x
/// @param eps        step; central differences have O(eps^2) truncation error
/// @param max_checks a tensor of more than max(max_checks, check_all_up_to) elements is checked
///                   on a random sample of `max_checks` elements (always including index 0 and
///                   n-1), to bound the cost on large tensors; a smaller one is checked in full
/// @param seed       seed of that sample: pass the test case's own (printed) seed, so that every
///                   run checks other elements and a failure can be replayed
/// @param floor_rel  floor of the relative error, as a fraction of max_i |analytic_i|
/// @param check_all_up_to  see max_checks (0: only tensors of at most max_checks elements)
/// @param abs_floor  absolute floor of the denominator: the size below which a difference is
///                   judged absolutely. Raise it to the rounding noise of the difference
///                   (~ 1e-16 |loss| / eps) divided by the wanted relative tolerance when a whole
///                   tensor's gradient is that small
template <class Loss>
GradCheck gradcheck(const std::string& name, double* x, const double* analytic, Index n,
                    Loss&& loss, double eps = 1e-6, Index max_checks = 48,
                    std::uint64_t seed = 1, double floor_rel = 1e-3, Index check_all_up_to = 0,
                    double abs_floor = 1e-12) {
  GradCheck r;
  r.name = name;
  std::vector<Index> idx(n);
  std::iota(idx.begin(), idx.end(), Index{0});
  if (n > std::max(max_checks, check_all_up_to)) {
    std::mt19937_64 rng(seed);
    std::shuffle(idx.begin() + 1, idx.end() - 1, rng);
    idx.resize(max_checks - 1);
    idx.push_back(n - 1);
  }
  double amax = 0;
  for (Index i = 0; i < n; ++i) amax = std::max(amax, std::abs(analytic[i]));
  const double floor = std::max(floor_rel * amax, abs_floor);
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
