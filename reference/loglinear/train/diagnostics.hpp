// Training diagnostics (SPEC.md §14.5 "median decay", §7 lambda per level): per layer and head,
// the median and quantiles of the decay rate a = exp(g) and of lambda at each level over a batch,
// printable as text and as JSON. O(N log N) per (layer, head, level) for the sorts.
/// \file
/// \brief Training diagnostics (SPEC.md §14.5 "median decay", §7 lambda per level)
/// \ingroup floor_train
#pragma once

#include <loglinear/core/tensor.hpp>

#include <string>
#include <vector>

namespace loglinear::train {

/// Quantiles of a sample (linear interpolation between order statistics, as numpy's default).
struct Quantiles {
  double q05 = 0;     ///< 5th percentile
  double q25 = 0;     ///< 25th percentile
  double median = 0;  ///< 50th percentile
  double q75 = 0;     ///< 75th percentile
  double q95 = 0;     ///< 95th percentile
  double min = 0;     ///< smallest value
  double max = 0;     ///< largest value
  Index count = 0;    ///< sample size (0: all fields 0)
};

/// Quantiles of `xs` (taken by value: it is sorted). An empty sample gives count = 0.
Quantiles quantiles(std::vector<double> xs);

/// Mean, spread and range of a sample (the pooled statistics of the JSON result).
struct ValueStats {
  double mean = 0;    ///< arithmetic mean
  double std = 0;     ///< population standard deviation
  double min = 0;     ///< smallest value
  double max = 0;     ///< largest value
  double median = 0;  ///< middle value of the sorted list (the upper one for an even count)
};

/// ValueStats of a sample (all zero when it is empty).
ValueStats value_stats(std::vector<double> xs);
/// Per level l of lam [N, H*L] (column h*L + l): ValueStats over every token and head.
/// @throws std::invalid_argument "lam: ..." if its column count is not a multiple of L >= 1.
template <class Scalar>
std::vector<ValueStats> level_stats(const RowMatrix<Scalar>& lam, Index L);
/// ValueStats of exp(g) over every entry of g [N, H] (the per-token decay rate).
template <class Scalar>
ValueStats decay_stats(const RowMatrix<Scalar>& g);

/// One head of one layer: exp(g) and lambda at each of the L levels.
struct HeadDiagnostics {
  Quantiles decay;                ///< of a = exp(g) over the batch's B*T tokens
  std::vector<Quantiles> lambda;  ///< [L], of lam[., h, l] over the same tokens
};

/// Per layer, per head.
struct Diagnostics {
  std::vector<std::vector<HeadDiagnostics>> layers;  ///< [layers][H]
  /// A table, one line per (layer, head): decay quantiles, then the lambda median per level.
  std::string to_text() const;
  /// JSON text: {"layers": [{"heads": [{"decay": {q05,...}, "lambda": [{...} per level]}]}]}.
  std::string to_json(int indent = 2) const;
};

/// Collects diagnostics from each layer's g [N, H] and lam [N, H*L] (column h*L + l).
/// @throws std::invalid_argument "lam: ..." if the layer counts differ or a lam is not [N, H*L],
///         "g: ..." if the g of a layer has no rows.
template <class Scalar>
Diagnostics collect_diagnostics(const std::vector<RowMatrix<Scalar>>& g, const std::vector<RowMatrix<Scalar>>& lam,
                                Index L);

}  // namespace loglinear::train
