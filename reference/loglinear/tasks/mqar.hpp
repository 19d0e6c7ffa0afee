// Multi-query associative recall (MQAR), SPEC.md §9.1, as the adaptive-decay sources define it.
// Vocabulary 128: keys from 1..63, values from 64..127, noise from 1..127.
/// \file
/// \brief Multi-query associative recall (MQAR), SPEC.md §9.1, as the adaptive-decay sources define it.
/// \ingroup floor_operator
#pragma once

#include <loglinear/tasks/task.hpp>

namespace loglinear::tasks {

/// Settings of the MQAR generator.
struct MqarOptions {
  Index length = 128;    ///< T, tokens per sequence (>= 4 * pairs)
  Index pairs = 8;       ///< n, key-value pairs per sequence (1..63)
  Index vocab = 128;     ///< vocabulary size (4..2^16); keys 1..vocab/2-1, values vocab/2..vocab-1
};

/// Largest MQAR vocabulary: every sequence shuffles the key and value ranges (vocab tokens).
inline constexpr Index kMaxMqarVocab = Index(1) << 16;
/// Most work make_mqar does in one call: count * (length + vocab) token draws and swaps.
inline constexpr Index kMaxMqarWork = Index(1) << 30;

/// Checks the settings of make_mqar without allocating anything, in this order: 4 <= vocab <=
/// kMaxMqarVocab; pairs >= 1; length >= 4; pairs <= min(length / 4, vocab/2 - 1) (the pairs and
/// the queries take 4 * pairs tokens, and the keys are distinct tokens from 1..vocab/2-1);
/// check_dataset_size(count, length); count * (length + vocab) <= kMaxMqarWork.
/// @throws std::invalid_argument naming the argument, with the numbers (e.g. "pairs: expected at
///         most 4 pairs for length 16 and vocab 128 (...), got 1000").
void check_mqar(const MqarOptions& opts, Index count);

/// Draws `count` MQAR sequences from `seed` (std::mt19937_64; the same seed gives the same data).
///
/// Layout of one sequence (0-indexed): positions 2i, 2i+1 hold key_i, value_i (i < n; keys and
/// values each drawn without replacement). The query block starts at T - 2n: position T-2n+2i
/// holds a key (a random permutation of the n keys, so each is queried once) and the target at
/// that position is its value (the sources' label at the following slot, shifted). Every other
/// position, the gap and the slot after each query key included, is uniform noise from
/// 1..vocab-1, which may repeat keys or values. Only the n query positions are scored.
/// @throws std::invalid_argument as check_mqar, which runs before anything is allocated.
Dataset make_mqar(const MqarOptions& opts, Index count, std::uint64_t seed);

/// The role of every position of `count` MQAR sequences of make_mqar's layout (the same for
/// every sequence): type 0 "key" at 2i and 1 "value" at 2i+1 (i < n, the stored pairs), 2 "query"
/// at T-2n+2i (the query keys, the only scored positions), 3 "filler" everywhere else (the noise
/// gap and the slot after each query key). By position, not token id: noise may repeat a key or
/// a value, and a query holds a key.
/// @param opts the settings the sequences were made with (length and pairs are read)
/// @param count the number of sequences
/// @throws std::invalid_argument as check_mqar.
PositionTypes mqar_position_types(const MqarOptions& opts, Index count);

}  // namespace loglinear::tasks
