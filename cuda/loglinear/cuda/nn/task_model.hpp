// GPU twin of reference/loglinear/nn/task_model.hpp: the synthetic-task model (SPEC.md §8 last
// paragraph) with every layer on the GPU: embedding -> N log-linear layers (q/k/v/dl[/dt]
// projections on cuBLAS, the decay and lambda twins, the chunked operator of cuda/chunked.hpp,
// out_proj, post-norm residual) -> LayerNorm -> LM head -> masked cross-entropy. Forward keeps its
// cache, backward consumes it, in the same order and with the same names as the CPU twin, whose
// every block the code below mirrors. Built from an initialised CPU model, so both start from the
// same weights (the whole-model test checks one step of each against the other). One Context (its
// own stream) per model: several models train side by side on one GPU.
/// \file
/// \brief GPU twin of nn/task_model.hpp: the task model with every layer on the GPU
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/nn/task_model.hpp>

#include <memory>
#include <vector>

namespace loglinear::cuda::nn {

/// The task model on the GPU, float32.
class TaskModel {
 public:
  /// The twin of `cpu`: the same configuration and the current values of its parameters, uploaded.
  /// @throws std::invalid_argument "form: ..." unless cpu's form is chunked (the GPU has only the
  ///         chunked form) and "chunk: expected a power of two <= 64 on the GPU ..." for a larger
  ///         chunk; std::runtime_error without a GPU.
  explicit TaskModel(loglinear::nn::TaskModel<float>& cpu);
  ~TaskModel();
  TaskModel(TaskModel&&) noexcept;  ///< movable, not copyable

  /// Forward on a host batch (checked as the CPU twin does, then copied in): the mean
  /// cross-entropy over the scored targets in nats; caches for backward. Waits for the loss.
  /// @param correct if not null, receives the number of scored positions predicted right.
  /// @throws std::invalid_argument as loglinear::nn::check_batch.
  /// @param batch tokens and targets [B, T] on the host
  double forward(const tasks::Batch& batch, Index* correct = nullptr);
  /// Backward of the last forward: ADDS into every DeviceParam::grad (asynchronous).
  /// @throws std::logic_error if forward has not run since the last backward.
  void backward();
  /// Every trainable tensor, in the CPU twin's params() order and with its names.
  std::vector<DeviceParam*> params();
  /// Sets every gradient to zero (asynchronous).
  void zero_grad();
  /// The configuration (the CPU twin's).
  const loglinear::nn::TaskModelConfig& config() const { return cfg_; }
  /// The context (stream, cuBLAS handle) everything of this model runs on.
  Context& context() { return ctx_; }
  /// The storage precision of the attention operator's calls: Precision::fp32 (the default, the
  /// CPU twin's arithmetic) or Precision::bf16 (bfloat16 copies of q, k, v around the tensor-core
  /// kernels, <= 1e-2 normwise; for speed). Applies from the next forward.
  void set_attention_precision(Precision p);
  /// g [B*T, H] of layer `layer` in the last forward. @throws std::invalid_argument "layer: ...".
  const DeviceMatrix& last_decay(Index layer) const;
  /// lam [B*T, H*L] of layer `layer` in the last forward. Throws as last_decay.
  const DeviceMatrix& last_lambda(Index layer) const;

 private:
  struct Impl;
  loglinear::nn::TaskModelConfig cfg_;
  Context ctx_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loglinear::cuda::nn
