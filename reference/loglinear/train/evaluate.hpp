// Evaluation of a model on a dataset: mean loss and token accuracy over every scored position,
// in batches of the training batch size. Forward only; O(dataset) forward passes.
/// \file
/// \brief Evaluation of a model on a dataset
/// \ingroup floor_train
#pragma once

#include <loglinear/train/model.hpp>

namespace loglinear::train {

/// Mean loss (nats) and accuracy (%) over the scored positions of a dataset.
struct Eval {
  double loss = 0;      ///< mean cross-entropy over scored positions
  double accuracy = 0;  ///< percentage of scored positions whose argmax is the target
};

/// Evaluates `model` on every sequence of `ds`, `batch` sequences per forward.
/// @throws std::invalid_argument if batch < 1, and as Model::forward.
Eval evaluate(Model& model, const tasks::Dataset& ds, Index batch);

}  // namespace loglinear::train
