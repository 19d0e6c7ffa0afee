// Multi-query associative recall (MQAR), SPEC.md §9.1, as the adaptive-decay sources define it.
// Vocabulary 128: keys from 1..63, values from 64..127, noise from 1..127.
#pragma once

#include <loglinear/tasks/task.hpp>

namespace loglinear::tasks {

/// Settings of the MQAR generator.
struct MqarOptions {
  Index length = 128;    ///< T, tokens per sequence (>= 4 * pairs)
  Index pairs = 8;       ///< n, key-value pairs per sequence (1..63)
  Index vocab = 128;     ///< vocabulary size; keys 1..vocab/2-1, values vocab/2..vocab-1
};

/// Draws `count` MQAR sequences from `seed` (std::mt19937_64; the same seed gives the same data).
///
/// Layout of one sequence (0-indexed): positions 2i, 2i+1 hold key_i, value_i (i < n; keys and
/// values each drawn without replacement). The query block starts at T - 2n: position T-2n+2i
/// holds a key (a random permutation of the n keys, so each is queried once) and the target at
/// that position is its value (the sources' label at the following slot, shifted). Every other
/// position, the gap and the slot after each query key included, is uniform noise from
/// 1..vocab-1, which may repeat keys or values. Only the n query positions are scored.
/// @throws std::invalid_argument if T < 4n, n < 1, n > vocab/2 - 1 or vocab < 4.
Dataset make_mqar(const MqarOptions& opts, Index count, std::uint64_t seed);

}  // namespace loglinear::tasks
