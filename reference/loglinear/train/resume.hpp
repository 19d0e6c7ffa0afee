// Saving and resuming a run: the model's parameters and the AdamW moments in one checkpoint
// (checkpoint.hpp's format), and the run's progress and settings in a JSON file next to it
// (<path>.json). A resumed run continues the exact optimisation: same batches (data.hpp), same
// moments, same step count, and it refuses settings that would change the run.
/// \file
/// \brief Saving and resuming a run
/// \ingroup floor_train
#pragma once

#include <loglinear/train/model.hpp>
#include <loglinear/train/optimizer.hpp>

#include <string>

namespace loglinear::train {

/// Progress of a run at a checkpoint; totals cover every segment before it.
struct RunState {
  long step = 0;                  ///< steps done
  double best_accuracy = 0;       ///< best validation accuracy so far (%)
  double wall_time_s = 0;         ///< wall time, training and evaluation
  double train_time_s = 0;        ///< wall time of the training steps alone
  double train_tokens = 0;        ///< tokens trained on
  double first_train_loss = -1;   ///< the first step's loss (-1: none yet)
  std::string history_json = "[]";  ///< the evaluation rows so far, a JSON array
};

/// Writes `path` (parameters + moments, copied from the device first for a GPU model) and `path`.json (state and `config_json`, the run's
/// settings as a JSON object). @throws std::runtime_error if a file cannot be written.
void save_run(const std::string& path, Model& model, Optimizer& opt, const RunState& state,
              const std::string& config_json);

/// Loads `path` and `path`.json into `model` and `opt` (and on to the device for a GPU model: a
/// checkpoint written on either device resumes on either) and returns the state to continue from.
/// Only steps (without warm-up), threads, eval_len (keeping the number of levels), early_stop
/// and device may differ between the file's settings and `config_json`; a file without a "mixer"
/// setting (written before --mixer existed) counts as mixer "mamba2".
/// @throws std::invalid_argument "--resume: ..." naming the first setting that differs, and as
///         load_checkpoint; std::runtime_error if a file cannot be read or parsed.
RunState load_run(const std::string& path, Model& model, Optimizer& opt, const std::string& config_json);

}  // namespace loglinear::train
