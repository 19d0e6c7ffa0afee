// A one-line progress reporter of the training loop: a redrawn bar on a terminal, plain lines every `every` updates
// otherwise (logs, CI). No C++ progress-bar package exists in Debian, hence this small class.
/// \file
/// \brief A one-line progress reporter of the training loop
/// \ingroup floor_train
#pragma once

#include <chrono>
#include <string>

namespace loglinear::train {

/// Reports progress of a loop of `total` steps to stderr.
class Progress {
 public:
  /// @param total number of steps; @param enabled false silences everything;
  /// @param every line interval when not a terminal.
  Progress(long total, bool enabled, long every = 100);
  /// Step `step` (1-based) done; `message` is appended (e.g. "loss 2.31 acc 45%").
  void update(long step, const std::string& message);
  /// Ends the bar's line.
  void finish();

 private:
  long total_, every_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace loglinear::train
