// Selective copying, SPEC.md §9.2, as the adaptive-decay sources define it: copy the n data
// tokens scattered among noise, in order, after a separator.
/// \file
/// \brief Selective copying, SPEC.md §9.2, as the adaptive-decay sources define it
/// \ingroup floor_operator
#pragma once

#include <loglinear/tasks/task.hpp>

namespace loglinear::tasks {

/// Token ids of the selective-copying vocabulary (128 entries; 0 and 66 are unused).
struct SelectiveCopyVocab {
  static constexpr std::int32_t separator = 1;   ///< marks the end of the input phase
  static constexpr std::int32_t blank = 2;       ///< query positions of the output phase
  static constexpr std::int32_t data_first = 3;  ///< data tokens 3..65 (63 of them)
  static constexpr std::int32_t data_last = 65;     ///< last data token
  static constexpr std::int32_t noise_first = 67;  ///< noise tokens 67..127
  static constexpr std::int32_t noise_last = 127;  ///< last noise token
  static constexpr Index size = 128;               ///< vocabulary size
};

/// Settings of the selective-copying generator.
struct SelectiveCopyOptions {
  Index length = 256;  ///< T (>= 2n + 1)
  Index tokens = 16;   ///< n data tokens to copy (1..63)
};

/// Checks the settings of make_selective_copy without allocating anything: 1 <= tokens <= 63,
/// length >= 2 * tokens + 1 (an input phase of T - n - 1 >= n positions that holds the n tokens,
/// the separator, n blanks), then check_dataset_size(count, length).
/// @throws std::invalid_argument naming the argument, with the numbers.
void check_selective_copy(const SelectiveCopyOptions& opts, Index count);

/// Draws `count` sequences from `seed`.
///
/// Positions 0..T-n-2 are the input phase: n distinct data tokens at sorted random positions,
/// noise elsewhere; position T-n-1 is the separator; the last n positions are blanks. The targets
/// are the data tokens in order at positions T-n-1..T-2 (the first is predicted at the
/// separator, the sources' one-step shift); nothing else is scored.
/// @throws std::invalid_argument as check_selective_copy, which runs before anything is allocated.
Dataset make_selective_copy(const SelectiveCopyOptions& opts, Index count, std::uint64_t seed);

/// The role of every position of sequences made by make_selective_copy with `opts`: type 0
/// "data" (the n data tokens of the input phase), 1 "noise" (the rest of the input phase), 2
/// "query" (the separator and the n blanks of the output phase, where the copy is read out).
/// Within the input phase the generator writes only data ids (3..65) and noise ids (67..127),
/// which never coincide, so the token tells data from noise exactly there.
/// @param opts the settings the sequences were made with
/// @param ds the sequences
/// @throws std::invalid_argument as check_selective_copy, and "ds: ..." if the sequences are not
///         of opts.length or an input phase does not hold exactly n data tokens.
PositionTypes selective_copy_position_types(const SelectiveCopyOptions& opts, const Dataset& ds);

}  // namespace loglinear::tasks
