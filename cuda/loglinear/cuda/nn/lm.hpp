// GPU twin of reference/loglinear/nn/lm.hpp: the small log-linear Mamba-2 language model (SPEC.md §8,
// block `HAttentionBlock`) with every layer on the GPU: embedding -> N x [x += mixer(RMSNorm(x));
// x += SwiGLU(RMSNorm(x))] -> RMSNorm -> untied head -> masked cross-entropy. Forward keeps its cache,
// backward consumes it, in the CPU twin's order (its every line is mirrored in cuda/src/nn/lm.cu).
// Cost per step as the CPU twin: the mixers' (cuda/nn/mamba2_mixer.hpp) plus O(N d (hidden + vocab))
// GEMMs. Built from an initialised CPU LM, so both start from the same weights; one Context (its own
// stream) per model. The task model (cuda/nn/task_model.hpp) is the simpler sibling.
/// \file
/// \brief GPU twin of nn/lm.hpp: the log-linear Mamba-2 LM with every layer on the GPU
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/nn/lm.hpp>

#include <cstdint>
#include <memory>
#include <vector>

namespace loglinear::cuda::nn {

/// The log-linear Mamba-2 LM on the GPU, float32: the twin of nn::MambaLm<float>.
class MambaLm {
 public:
  /// The twin of `cpu`: its configuration and the current values of all its parameters, uploaded;
  /// gradients start at zero. `cpu` is only read.
  /// @throws std::invalid_argument as Mamba2Mixer's constructor (form chunked, chunk a power of two
  ///         <= 64); std::logic_error if the parameter names differ from the CPU twin's;
  ///         std::runtime_error without a GPU.
  explicit MambaLm(loglinear::nn::MambaLm<float>& cpu);
  ~MambaLm();
  MambaLm(MambaLm&&) noexcept;  ///< movable, not copyable

  /// Forward to the mean cross-entropy over the positions with targets[n] >= 0, as the CPU twin's
  /// forward(): the ids are checked and copied in, everything else runs on the GPU; caches for
  /// backward. Waits for the loss.
  /// @param tokens [B*T] ids, rows (b, t) @param targets [B*T] labels or -1 @param B batch size
  /// @param correct if not null, receives the number of scored positions whose argmax is right.
  /// @throws std::invalid_argument with the CPU twin's messages: "targets: ..." (size or a label
  ///         outside [-1, vocab)), "tokens: ..." (size not a multiple of B, an id outside
  ///         [0, vocab)), "levels: ..." if num_levels(T) exceeds the mixers' levels.
  double forward(const std::vector<std::int32_t>& tokens, const std::vector<std::int32_t>& targets, Index B,
                 Index* correct = nullptr);
  /// Backward of the last forward(): ADDS d(loss)/d(parameter) into every DeviceParam::grad
  /// (asynchronous). @throws std::logic_error if forward() has not run since the last backward.
  void backward();
  /// Every trainable tensor, in the CPU twin's params() order and with its names: embedding,
  /// norm_f, lm_head; per block norm1, norm2, mlp.W_gate, mlp.W_up, mlp.W_down, mixer.*.
  std::vector<DeviceParam*> params();
  /// Sets every gradient to zero (asynchronous).
  void zero_grad();
  /// The configuration (the CPU twin's).
  const loglinear::nn::LmConfig& config() const { return cfg_; }
  /// The context (stream, cuBLAS handle) everything of this model runs on.
  Context& context() { return ctx_; }
  /// Number of blocks.
  Index num_layers() const { return cfg_.layers; }
  /// Every mixer's attention storage precision (Mamba2Mixer::set_attention_precision).
  void set_attention_precision(Precision p);
  /// g [B*T, H] of block `layer`'s mixer in the last forward.
  /// @throws std::invalid_argument "layer: ..." if out of range.
  const DeviceMatrix& last_decay(Index layer) const;
  /// lam [B*T, H*L] (column h*L + l) of block `layer`'s mixer in the last forward. Throws as last_decay.
  const DeviceMatrix& last_lambda(Index layer) const;

 private:
  struct Impl;
  loglinear::nn::LmConfig cfg_;
  Context ctx_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loglinear::cuda::nn
