// GPU twin of reference/loglinear/nn/mamba2_mixer.hpp: the log-linear Mamba-2 mixer (SPEC.md §8)
// with every step on the GPU: in_proj (cuBLAS) -> [z | xBC | dt_raw | dl] column slices split by a
// copy kernel, causal depthwise conv1d + SiLU (cuda/nn/conv1d.hpp), dt = softplus(dt_raw + dt_bias)
// and g = -exp(A_log) dt, v = x dt per head, lambda (cuda/lambda/), the chunked operator with q = C,
// k = B (cuda/chunked.hpp, G = n_groups), y = o + D x, the gated RMSNorm per group and out_proj.
// Per-head sums of the backward (dD, dA_log, ddt_bias) are per-row partials plus deterministic
// column sums, no atomics. Cost as the CPU twin: O(N d_model d_in_proj) projections plus the
// operator's O(T log T) per head. Built from an initialised CPU mixer (its Params uploaded).
/// \file
/// \brief GPU twin of nn/mamba2_mixer.hpp: the log-linear Mamba-2 mixer on the GPU
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/nn/mamba2_mixer.hpp>

#include <memory>
#include <vector>

namespace loglinear::cuda::nn {

/// One log-linear Mamba-2 mixer on the GPU, float32: the twin of nn::Mamba2Mixer<float>.
class Mamba2Mixer {
 public:
  /// The twin of `cpu`: its configuration and the current values of its parameters (lambda's too),
  /// uploaded on ctx's stream; gradients start at zero. `cpu` is only read.
  /// @throws std::invalid_argument "form: expected chunked on the GPU ..." unless cpu's form is
  ///         chunked, "chunk: expected a power of two <= 64 on the GPU ..." otherwise;
  ///         std::logic_error if a parameter name differs from the CPU twin's.
  Mamba2Mixer(loglinear::nn::Mamba2Mixer<float>& cpu, Context& ctx);
  ~Mamba2Mixer();
  Mamba2Mixer(Mamba2Mixer&&) noexcept;  ///< movable, not copyable

  /// out = mixer(u), caching every intermediate (and a copy of u) for backward.
  /// @param ctx the context (stream, cuBLAS handle) the call is queued on
  /// @param u [B*T, d_model], rows ordered (b, t) @param B batch size
  /// @param out resized to [B*T, d_model], overwritten (may not alias u).
  /// @throws std::invalid_argument "u: ..." on a shape mismatch, "levels: ..." if num_levels(T) > L
  ///         (the CPU twin's messages), before anything is queued.
  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& out);
  /// Backward of the last forward: ADDS into every parameter's grad; du [B*T, d_model] WRITTEN
  /// (resized; the CPU twin returns it). du may not alias dout.
  /// @throws std::invalid_argument "dout: expected the forward's shape ..." on a mismatch;
  ///         std::logic_error if forward has not run.
  void backward(Context& ctx, const DeviceMatrix& dout, DeviceMatrix& du);

  /// Every trainable tensor in the CPU twin's order and with its names: in_proj, conv_w, conv_b,
  /// dt_bias, A_log, D, norm_w, out_proj, then lambda's.
  std::vector<DeviceParam*> params();
  /// The configuration (the CPU twin's).
  const loglinear::nn::Mamba2MixerConfig& config() const { return cfg_; }
  /// Uses `other`'s temporaries from now on (in_proj's output and the backward's gradients: what
  /// a call needs only while it runs), so that mixers running one after another on one Context
  /// (the LM's blocks) hold one set between them. Stream order makes the sharing safe: one
  /// mixer's kernels have finished with a buffer before the next mixer's kernels touch it.
  void share_temporaries(Mamba2Mixer& other);
  /// The storage precision of the attention operator's calls: Precision::fp32 (the default: the
  /// FFMA kernels, the CPU twin's arithmetic) or Precision::bf16 (q, k, v rounded to bfloat16
  /// copies around the tensor-core kernels, <= 1e-2 normwise; for speed). Applies from the next forward.
  void set_attention_precision(Precision p);
  /// See set_attention_precision.
  Precision attention_precision() const;
  /// g [B*T, H] of the last forward (log-decay <= 0).
  const DeviceMatrix& last_decay() const;
  /// lam [B*T, H*L] of the last forward (column h*L + l).
  const DeviceMatrix& last_lambda() const;

 private:
  struct Impl;
  loglinear::nn::Mamba2MixerConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loglinear::cuda::nn
