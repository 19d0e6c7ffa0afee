// OpenMP work split shared by every CPU form: one task per (batch, head) pair, forward and
// backward. The forward heads are independent. In the backward, dq and dk [B,T,G,K] are shared by
// the heads of a group; with G < H each head accumulates into its own [T,K] scratch slice and the
// slices are summed afterwards over the heads of each group in ascending head order. Every sum is
// thus taken in the same order whatever the thread count, so results are bit-identical for any
// number of threads (tests/attention/test_forms_agree.cpp and test_backward.cpp check this).
/// \file
/// \brief OpenMP work split shared by every CPU form
/// \ingroup floor_core
#pragma once

#include <loglinear/core/inputs.hpp>

namespace loglinear {

/// Calls `fn(b, h)` for every batch b and head h; the B * H calls run in parallel with OpenMP.
/// `fn` must only write data owned by head (b, h).
template <class Fn>
void for_each_head(const AttentionDims& d, Fn&& fn) {
#pragma omp parallel for schedule(dynamic)
  for (Index bh = 0; bh < d.B * d.H; ++bh) fn(bh / d.H, bh % d.H);
}

/// Backward split: calls `fn(b, h, dq_bh, dk_bh)` for every batch and head, in parallel, where
/// dq_bh, dk_bh are [T,K] maps owned by head (b, h) and zero on entry; `fn` adds head h's share
/// of dq and dk into them. Afterwards dq, dk [B,T,G,K] hold the sums over the heads of each group.
///
/// With G = H the maps are the slices of dq, dk themselves (which the caller must have zeroed);
/// otherwise they point into [B,T,H,K] scratch tensors (2 B T H K scalars), reduced into dq, dk
/// in a fixed order (head h0 + h0+1 + ...), independent of the thread count.
template <class Scalar, class Fn>
void for_each_head_shared_qk(const AttentionDims& d, TensorView<Scalar, 4> dq,
                             TensorView<Scalar, 4> dk, Fn&& fn) {
  const Index heads_per_group = d.H / d.G;
  if (heads_per_group == 1) {
    for_each_head(d, [&](Index b, Index h) { fn(b, h, slice_bt(dq, b, h), slice_bt(dk, b, h)); });
    return;
  }
  Tensor<Scalar, 4> dq_h({d.B, d.T, d.H, d.K}), dk_h({d.B, d.T, d.H, d.K});
  for_each_head(d, [&](Index b, Index h) {
    fn(b, h, slice_bt(dq_h.view(), b, h), slice_bt(dk_h.view(), b, h));
  });
  // Group reduction, summed in head order. It is O(B T H K), negligible next to the heads'
  // work, so it runs on one thread rather than paying for another parallel region.
  for (Index bt = 0; bt < d.B * d.T; ++bt) {
    const Index b = bt / d.T, t = bt % d.T;
    for (Index gr = 0; gr < d.G; ++gr) {
      for (Index i = 0; i < d.K; ++i) {
        Scalar sq = 0, sk = 0;
        for (Index h = gr * heads_per_group; h < (gr + 1) * heads_per_group; ++h) {
          sq += dq_h(b, t, h, i);
          sk += dk_h(b, t, h, i);
        }
        dq(b, t, gr, i) = sq;
        dk(b, t, gr, i) = sk;
      }
    }
  }
}

}  // namespace loglinear
