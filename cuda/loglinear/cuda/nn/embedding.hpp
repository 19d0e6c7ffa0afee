// GPU twin of reference/loglinear/nn/embedding.hpp (SPEC.md §8): the token embedding as a row
// gather forward and a deterministic gather-sum backward. The CPU's scatter-add becomes, per id, a
// sum over the positions holding that id in increasing order: the positions grouped by id
// (a counting sort, built on the host from the ids it already has) come up with the ids in one
// copy from pinned memory, so the backward needs no atomics and gives the same bits every run.
// O(N d) both ways.
/// \file
/// \brief GPU twin of nn/embedding.hpp: token embedding, deterministic backward
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

#include <cstdint>
#include <memory>

namespace loglinear::cuda::nn {

/// The token ids of one batch on the device, with each id's positions in order (for the backward)
/// and, optionally, the batch's targets (for the cross-entropy), all in one copy from pinned
/// memory. Reusable across steps: buffers grow and are kept.
class DeviceTokens {
 public:
  DeviceTokens();
  ~DeviceTokens();
  DeviceTokens(DeviceTokens&&) noexcept;             ///< movable
  DeviceTokens& operator=(DeviceTokens&&) noexcept;  ///< movable

  /// Checks and stages `N` ids in [0, vocab) (and `targets`, if given), groups the ids' positions
  /// by id on the host, and queues one copy on `stream` (asynchronous: the staging buffer is not
  /// reused until the next set() waits for this copy).
  /// @param tokens N ids on the host @param N positions, 0 <= N < 2^31 @param vocab ids' range
  /// @param stream the stream the copy is queued on
  /// @param targets if not null, N targets on the host in [-1, vocab) (-1: not scored)
  /// @throws std::invalid_argument "tokens: expected ids in [0, vocab), got <id> at <n>" (as the
  ///         CPU twin), "targets: expected -1 or ids in [0, vocab) ...", "vocab: expected >= 1",
  ///         "N: expected 0 <= N < 2^31 ..." or "tokens: expected a host pointer, got nullptr".
  void set(const std::int32_t* tokens, Index N, Index vocab, cudaStream_t stream,
           const std::int32_t* targets = nullptr);
  /// N, the number of positions.
  Index size() const { return N_; }
  /// The vocabulary the ids were checked against.
  Index vocab() const { return vocab_; }
  /// Device pointer of the ids [N].
  const std::int32_t* ids() const;
  /// Device pointer of offsets [vocab + 1]: id v occupies positions()[offsets[v] .. offsets[v+1]).
  const std::int32_t* offsets() const;
  /// Device pointer of the positions [N], grouped by id, increasing within an id.
  const std::int32_t* positions() const;
  /// Device pointer of the targets [N] given to the last set(), nullptr if none were.
  const std::int32_t* targets() const;
  /// Number of targets >= 0 given to the last set() (0 if none were).
  Index scored() const { return scored_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Index N_ = 0, vocab_ = 0, scored_ = 0;
  bool has_targets_ = false;
};

/// x[n] = table[tokens[n]]. @param table [vocab, d] @param x resized to [N, d].
/// @throws std::invalid_argument "table: expected [vocab, d] with vocab = tokens.vocab() ..."
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param tokens the batch's ids on the device (DeviceTokens::set)
void embedding_forward(Context& ctx, const DeviceTokens& tokens, const DeviceMatrix& table, DeviceMatrix& x);
/// Backward: dtable[v] += sum over n with tokens[n] = v (increasing n) of dx[n] (ADDED).
/// @param dx [N, d] @param dtable [vocab, d].
/// @throws std::invalid_argument naming dx or dtable on a shape mismatch.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
/// @param tokens the batch's ids on the device (DeviceTokens::set)
void embedding_backward(Context& ctx, const DeviceTokens& tokens, const DeviceMatrix& dx, DeviceMatrix& dtable);

}  // namespace loglinear::cuda::nn
