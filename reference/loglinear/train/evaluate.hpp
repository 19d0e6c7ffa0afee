// Evaluation of a model on a dataset: mean loss and token accuracy over every scored position,
// in batches of the training batch size. Forward only; O(dataset) forward passes.
/// \file
/// \brief Evaluation of a model on a dataset
/// \ingroup floor_train
#pragma once

#include <loglinear/train/model.hpp>

#include <functional>

namespace loglinear::train {

/// Mean loss (nats) and accuracy (%) over the scored positions of a dataset.
struct Eval {
  double loss = 0;      ///< mean cross-entropy over scored positions
  double accuracy = 0;  ///< percentage of scored positions whose argmax is the target
};

/// A forward on the sequences [begin, begin + part.size) of a dataset: returns the mean loss over
/// the scored positions of `part` and, if `correct` is not null, stores how many were right.
using BatchForward = std::function<double(const tasks::Batch& part, Index begin, Index* correct)>;

/// Evaluates `model` on every sequence of `ds`, `batch` sequences per forward.
/// @throws std::invalid_argument if batch < 1, and as Model::forward.
Eval evaluate(Model& model, const tasks::Dataset& ds, Index batch);

/// evaluate's loop with the forward supplied (train/ablation.hpp runs a model with its lambda
/// replaced through it): the sequences of `ds` in order, `batch` per call of `forward`, each
/// batch's loss weighted by its scored positions.
/// @param ds the dataset
/// @param batch sequences per forward, >= 1
/// @param forward called once per batch with the batch and the index of its first sequence
/// @throws std::invalid_argument if batch < 1, and what `forward` throws.
Eval evaluate_batches(const tasks::Dataset& ds, Index batch, const BatchForward& forward);

}  // namespace loglinear::train
