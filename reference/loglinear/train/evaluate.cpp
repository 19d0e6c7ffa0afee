// Evaluation (evaluate.hpp). Each batch's mean loss is weighted by its scored positions, so the
// result is the mean over positions, independent of how the set is split into batches.
#include <loglinear/train/evaluate.hpp>

#include <algorithm>
#include <stdexcept>

namespace loglinear::train {

Eval evaluate(Model& model, const tasks::Dataset& ds, Index batch) {
  return evaluate_batches(ds, batch, [&](const tasks::Batch& part, Index, Index* correct) {
    return model.forward(part, correct);
  });
}

Eval evaluate_batches(const tasks::Dataset& ds, Index batch, const BatchForward& forward) {
  if (batch < 1) throw std::invalid_argument("batch: expected >= 1, got " + std::to_string(batch));
  double loss_sum = 0;
  Index correct_sum = 0, scored_sum = 0;
  for (Index b = 0; b < ds.size(); b += batch) {
    const tasks::Batch part = ds.range(b, std::min(ds.size(), b + batch));
    Index correct = 0;
    const Index scored = part.scored();
    loss_sum += forward(part, b, &correct) * double(scored);
    correct_sum += correct;
    scored_sum += scored;
  }
  const double n = double(std::max<Index>(1, scored_sum));
  return {loss_sum / n, 100.0 * double(correct_sum) / n};
}

}  // namespace loglinear::train
