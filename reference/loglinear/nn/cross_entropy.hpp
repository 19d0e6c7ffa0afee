// Mean softmax cross-entropy over the scored rows (the label mask: target -1 = not scored), the
// loss of both models. Forward and backward in one call because the gradient (softmax - onehot)
// reuses the forward's exponentials. O(N vocab).
/// \file
/// \brief Mean softmax cross-entropy over the scored rows (the label mask)
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cstdint>

namespace loglinear::nn {

/// Mean softmax cross-entropy over the scored rows (target >= 0) and its gradient.
///
/// @param logits [N, vocab]; @param targets [N], -1 = not scored.
/// @param dlogits if not null, overwritten with d(mean loss)/d(logits) (zero on unscored rows).
/// @param correct if not null, receives the number of scored rows whose argmax is the target.
/// @return the mean loss in nats (0 if nothing is scored).
template <class Scalar>
double cross_entropy(const RowMatrix<Scalar>& logits, const std::int32_t* targets,
                     RowMatrix<Scalar>* dlogits, Index* correct = nullptr);

}  // namespace loglinear::nn
