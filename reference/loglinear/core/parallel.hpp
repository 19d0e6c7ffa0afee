// OpenMP work split shared by every CPU form: one task per (batch, query/key group), heads of a
// group handled in order inside the task. Splitting by group rather than by head keeps the
// backward race-free (dq, dk of a group sum over its heads) and the results identical for any
// thread count, because every sum is accumulated in the same order.
#pragma once

#include <loglinear/attention/inputs.hpp>

namespace loglinear {

/// Calls `fn(b, h)` for every batch and head; tasks (b, group) run in parallel with OpenMP.
template <class Fn>
void for_each_head(const AttentionDims& d, Fn&& fn) {
  const Index heads_per_group = d.H / d.G;
#pragma omp parallel for schedule(dynamic)
  for (Index bg = 0; bg < d.B * d.G; ++bg) {
    const Index b = bg / d.G, gr = bg % d.G;
    for (Index h = gr * heads_per_group; h < (gr + 1) * heads_per_group; ++h) fn(b, h);
  }
}

}  // namespace loglinear
