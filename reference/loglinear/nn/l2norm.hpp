// L2 normalisation of q and k in the Gated DeltaNet mixer (SPEC.md §6: "q and k L2-normalised
// inside the kernel"), a forward/backward pair in the llm.c style on row-major [N, d] activations
// (N = B*T), one normalisation per group of d / groups features (a group = one head's K). As fla's
// l2norm: y = x / sqrt(sum(x^2) + eps), eps = 1e-6. O(N d) both ways.
/// \file
/// \brief L2 normalisation per group of features (the Gated DeltaNet mixer's q and k, SPEC.md §6)
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear::nn {

/// What l2norm_backward needs from the forward.
template <class Scalar>
struct L2NormCache {
  RowMatrix<Scalar> y;     ///< the output x * rstd per group, [N, d]
  RowMatrix<Scalar> rstd;  ///< 1 / sqrt(sum_group(x^2) + eps), [N, groups]
};

/// L2 normalisation per group of d / groups features: y = x / sqrt(sum(x^2) + eps), no weight.
/// @param x [N, d]
/// @param cache overwritten with what l2norm_backward needs
/// @param groups divides d (one group per head: groups = number of heads)
/// @param eps 1e-6 as fla's l2norm (keeps a zero row finite: its output is zero)
/// @return y [N, d], each group of unit norm up to eps.
/// @throws std::invalid_argument "groups: ..." if groups does not divide d.
template <class Scalar>
RowMatrix<Scalar> l2norm_forward(const RowMatrix<Scalar>& x, L2NormCache<Scalar>& cache, Index groups = 1,
                                 Scalar eps = Scalar(1e-6));

/// Backward of l2norm_forward: RETURNS dx = rstd (dy - y <dy, y>) per group.
/// @param dy d(loss)/dy [N, d]
/// @param cache the forward's cache
/// @return dx [N, d]
/// @throws std::invalid_argument "dy: ..." if dy's shape differs from the forward's.
template <class Scalar>
RowMatrix<Scalar> l2norm_backward(const RowMatrix<Scalar>& dy, const L2NormCache<Scalar>& cache);

}  // namespace loglinear::nn
