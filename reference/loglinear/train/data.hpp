// The data feed of a training run (SPEC.md §9): the training, validation and long-validation
// sets of MQAR, selective copying or the byte-level LM, and the training batch of every step as
// a deterministic function of (seed, step), so that a resumed run sees exactly the batches the
// uninterrupted one would have. Generating is O(train_size * length) once.
/// \file
/// \brief The data feed of a training run (SPEC.md §9)
/// \ingroup floor_train
#pragma once

#include <loglinear/tasks/char_lm.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace loglinear::train {

/// What a run trains and evaluates on; the names are loglinear-train's flags.
struct DataConfig {
  std::string task = "mqar";  ///< mqar | selective_copy | lm
  Index length = 128;         ///< training sequence length T
  Index pairs = 8;            ///< MQAR key-value pairs
  Index copy_tokens = 16;     ///< selective copying: data tokens
  Index eval_len = 0;         ///< also evaluate at this length (0: no)
  Index batch = 64;           ///< sequences per step
  Index train_size = 10000;   ///< training sequences generated up front (not the LM)
  Index val_size = 1000;      ///< validation sequences (LM: windows)
  std::uint64_t seed = 0;     ///< seed of the data and of the batch order
  std::string corpus;         ///< LM corpus file
};

/// The datasets of one run.
class TaskData {
 public:
  /// Generates (or, for the LM, reads) every set.
  /// @throws std::invalid_argument naming the flag (--task, --pairs, --length, --eval-len, ...)
  ///         when the sets cannot be made, std::runtime_error if the corpus cannot be read.
  explicit TaskData(const DataConfig& cfg);
  /// Token ids are in [0, vocab()).
  Index vocab() const { return vocab_; }
  /// The training batch of `step`.
  tasks::Batch train_batch(long step) const;
  /// Validation set at the training length.
  const tasks::Dataset& val() const { return val_; }
  /// Validation set at eval_len (empty when eval_len = 0).
  const tasks::Dataset& long_val() const { return long_; }

 private:
  DataConfig cfg_;
  Index vocab_ = 0;
  tasks::Dataset train_, val_, long_;
  std::unique_ptr<tasks::CharCorpus> corpus_;
};

}  // namespace loglinear::train
