// The training loop of the experiments (SPEC.md §9): AdamW with global-norm clipping and the
// warm-up + cosine schedule, evaluation every eval_every steps (also at eval_len for length
// generalisation), early stop at a validation accuracy, checkpoints that resume exactly, a
// progress bar, and one JSON result (settings, history, best accuracy, times, commit, lambda and
// decay statistics, per-head diagnostics). apps/loglinear_train.cpp is its command line.
/// \file
/// \brief The training loop of the experiments (SPEC.md §9)
/// \ingroup floor_train
#pragma once

#include <loglinear/train/data.hpp>
#include <loglinear/train/model.hpp>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace loglinear::train {

/// Every setting of a run; the names are loglinear-train's flags.
struct TrainConfig {
  ModelConfig model;          ///< architecture
  DataConfig data;            ///< task and data sizes; data.seed is set from seed
  long steps = 20000;         ///< maximum training steps
  long eval_every = 100;      ///< steps between evaluations
  long warmup = 0;            ///< linear warm-up steps, then cosine decay (0: constant lr)
  double lr = 1e-3;           ///< peak learning rate
  double clip = 1.0;          ///< gradient-norm clip
  double early_stop = 99.0;   ///< stop at this validation accuracy (%), not for the LM
  /// No early stop before this many steps, so that every run of a sweep has an evaluation at a
  /// common step (its JSON still says when the accuracy first reached early_stop: solved_at_step).
  long min_steps = 0;
  double weight_decay = 0.0;  ///< AdamW decoupled weight decay
  std::uint64_t seed = 0;     ///< seed of data, init and batch order
  int threads = 0;            ///< OpenMP threads (0: all)
  /// Where the model trains: "cpu", or "cuda" where the CUDA backend is built and registered
  /// (train/device.hpp). Either device reads and writes the same checkpoints.
  std::string device = "cpu";
  std::string json_path;      ///< write the result here (empty: don't)
  std::string checkpoint;     ///< save model + optimiser here at every evaluation (empty: don't)
  std::string resume;         ///< resume from this checkpoint (empty: start afresh)
  std::string dump_lambda;    ///< write lambda of one validation sequence here (empty: don't)
  bool print_diagnostics = false;  ///< print per-head decay / lambda quantiles at the end
  /// After training, evaluate the final weights with lambda replaced by its means (per token,
  /// per position type) and record it under "lambda_ablation" (train/ablation.hpp); --model task
  /// with --task mqar or selective_copy only.
  bool ablate_lambda = false;
  bool progress = true;       ///< show a progress bar on stderr
  std::string commit = "unknown";  ///< source version recorded in the JSON (git describe --dirty)
  /// How the program was built (compiler, flags, library versions), recorded under "build".
  std::vector<std::pair<std::string, std::string>> build;
};

/// The --quick preset: small MQAR (T = 64, 8 pairs, 400 steps, 2000 training and 256 validation
/// sequences, evaluation every 100 steps). The command line applies it to the defaults, before
/// the flags, so that flags given with --quick still apply.
void apply_quick_preset(TrainConfig& cfg);

/// Checks every setting before anything is allocated: known keys, sizes >= 1 where needed, a
/// power-of-two chunk size, lengths whose levels the model can hold, and totals (parameters,
/// generated tokens) that fit in memory.
/// @throws std::invalid_argument naming the flag, what it expects and what it got.
void validate(const TrainConfig& cfg);

/// Asks a running run_training to stop after its current step (async-signal-safe: loglinear-train
/// calls it from its SIGTERM / SIGINT handler). The run then saves its --checkpoint, if it has one,
/// at the step it reached and run_training throws Interrupted.
void request_stop() noexcept;

/// What run_training throws when request_stop() ended it before --steps or the early stop; what()
/// says the step reached and how to resume.
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Runs (or resumes) the training; writes the JSON, checkpoint and lambda dump if asked and
/// prints a one-line summary to stdout.
/// @return the result as JSON text.
/// @throws std::invalid_argument as validate and for a mismatched --resume, std::runtime_error
///         for files that cannot be read or written, Interrupted after request_stop().
std::string run_training(TrainConfig cfg);

}  // namespace loglinear::train
