// The learning-rate schedule of the experiments: linear warm-up, then cosine decay (SPEC.md §9).
/// \file
/// \brief The learning-rate schedule of the experiments
/// \ingroup floor_train
#pragma once

namespace loglinear::train {

/// Learning rate at `step` (0-based): linear warm-up over `warmup` steps to `peak`, then cosine
/// decay to `peak * final_fraction` at `total` steps. warmup = 0 and final_fraction = 1 give a
/// constant rate (the sources' Adam runs).
double warmup_cosine(long step, long warmup, long total, double peak, double final_fraction);

}  // namespace loglinear::train
