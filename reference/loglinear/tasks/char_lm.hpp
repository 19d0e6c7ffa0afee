// Character-level (byte-level) language modelling on a plain-text corpus, SPEC.md §9.3 scaled
// down: the public-domain King James Bible from Debian's bible-kjv package, generated at build
// time by scripts/make_kjv_corpus.sh and never committed.
/// \file
/// \brief Character-level (byte-level) language modelling on a plain-text corpus, SPEC.md §9.3 scaled down
/// \ingroup floor_operator
#pragma once

#include <loglinear/tasks/task.hpp>

#include <string>
#include <vector>

namespace loglinear::tasks {

/// A byte corpus with a fixed train / validation split (the last `valid_fraction` of the bytes).
class CharCorpus {
 public:
  /// Reads the corpus file at `path`; `valid_fraction` in (0, 1).
  /// @throws std::runtime_error if the file cannot be read (the message says how to make it) or
  ///         is not a regular file;
  /// @throws std::invalid_argument on a bad fraction or a corpus too small to split.
  static CharCorpus from_file(const std::string& path, double valid_fraction = 0.1);
  /// From bytes already in memory; same checks as from_file.
  CharCorpus(std::string bytes, double valid_fraction);

  /// Vocabulary size: 256 byte values (bits per byte is the natural metric).
  static constexpr Index vocab = 256;
  Index train_size() const { return Index(train_.size()); }  ///< bytes in the training split
  Index valid_size() const { return Index(valid_.size()); }  ///< bytes in the validation split

  /// `count` random windows of the training split, each `length` tokens with the next byte as
  /// target at every position.
  /// @throws std::invalid_argument unless 1 <= length < train_size() and
  ///         check_dataset_size(count, length) passes (checked before anything is allocated).
  Batch sample_train(Index count, Index length, std::uint64_t seed) const;
  /// Consecutive non-overlapping windows of the validation split (deterministic), at most
  /// `max_windows` of them.
  /// @throws std::invalid_argument unless 1 <= length < valid_size() and max_windows >= 1.
  Batch valid_windows(Index length, Index max_windows) const;

 private:
  std::string train_, valid_;
};

/// Bits per byte from a mean cross-entropy in nats per byte: nats / ln 2.
double bits_per_byte(double nats_per_byte);

}  // namespace loglinear::tasks
