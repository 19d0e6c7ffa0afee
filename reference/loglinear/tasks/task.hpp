// Token sequences for the synthetic tasks and the character-level LM (SPEC.md §9): the common
// Batch type and the interface every task generator implements.
/// \file
/// \brief Token sequences for the synthetic tasks and the character-level LM (SPEC.md §9)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace loglinear::tasks {

/// Target value of a position that is not scored.
inline constexpr std::int32_t kIgnore = -1;

/// Most tokens a generator makes in one call (count * length): two int32 tensors of 1 GiB each.
/// Every generator refuses more before it allocates anything.
inline constexpr Index kMaxDatasetTokens = Index(1) << 28;

/// Checks the size of a request for `count` sequences of `length` tokens: count >= 1,
/// 1 <= length <= kMaxDatasetTokens and count * length <= kMaxDatasetTokens (computed without
/// overflow).
/// @throws std::invalid_argument naming `count` or `length` with both numbers.
void check_dataset_size(Index count, Index length);

/// A batch of token sequences with next-token targets.
///
/// `targets(b, p)` is the token the model must predict after reading tokens[b, 0..p], or kIgnore
/// where nothing is scored. This is the sources' `logits[:, :-1]` vs `labels[:, 1:]` shift
/// applied once, when the data is made, so that losses never shift again (SPEC.md §11.5).
struct Batch {
  Tensor<std::int32_t, 2> tokens;   ///< [B, T] input token ids in [0, vocab)
  Tensor<std::int32_t, 2> targets;  ///< [B, T] next-token targets or kIgnore

  /// Number of scored positions.
  Index scored() const;
};

/// A fixed set of sequences drawn once from a seed (the sources generate 10 000 training and
/// 1 000 validation sequences up front and sample batches by index).
struct Dataset {
  Batch data;  ///< all sequences, [N, T]

  /// Number of sequences.
  Index size() const { return data.tokens.dim(0); }
  /// Length of every sequence.
  Index length() const { return data.tokens.dim(1); }
  /// Gathers the sequences at `indices` ([n] entries in [0, size())) into a batch.
  Batch gather(const std::vector<Index>& indices) const;
  /// Sequences [begin, end) as a batch (for evaluation in order).
  Batch range(Index begin, Index end) const;
};

/// The role of every position of a dataset's sequences, as its generator laid them out (the
/// lambda ablation, train/ablation.hpp, averages lambda per type). Made by the generator's own
/// function (mqar_position_types, selective_copy_position_types), never by guessing from token
/// ids that may coincide across roles.
struct PositionTypes {
  std::vector<std::string> names;  ///< names[id]: the role that type id `id` stands for
  Tensor<std::int32_t, 2> ids;     ///< [N, T] type id of each position, in [0, names.size())
};

}  // namespace loglinear::tasks
