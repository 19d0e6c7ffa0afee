// What the training loop needs from a model, so that the task model (nn/task_model.hpp) and the
// full log-linear Mamba-2 LM (nn/lm.hpp) train through one loop, one evaluation, one set of
// statistics and one checkpoint format. make_model builds either from a ModelConfig.
/// \file
/// \brief What the training loop needs from a model, so that the task model (nn/task_model.hpp) and the full log-linear Mamba-2 LM (nn/lm.hpp) train through ...
/// \ingroup floor_train
#pragma once

#include <loglinear/core/param.hpp>
#include <loglinear/nn/lm.hpp>
#include <loglinear/nn/task_model.hpp>
#include <loglinear/tasks/task.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loglinear::train {

/// Architecture choices of both models; the names are loglinear-train's flags.
struct ModelConfig {
  std::string model = "task";           ///< task (SPEC.md §8 toy model) | mamba2 (full LM)
  /// The operator of either model: mamba2 (log-linear Mamba-2, SPEC.md §8) | gdn (log-linear Gated
  /// DeltaNet, SPEC.md §6: the task model's layers gain beta and L2-normalised q, k; the LM's
  /// blocks get nn/gdn_mixer.hpp). Not on --device cuda.
  std::string mixer = "mamba2";
  std::string lambda = "mlp_softplus";  ///< a key of lambda::lambda_names()
  std::string decay = "mamba2";         ///< a key of decay::decay_names() (mamba2 model: mamba2 only)
  double decay_p = 0.99;                ///< simple_decay: its initial decay rate p, in (0, 1)
  std::string form = "chunked";         ///< operator form: naive | recurrent | chunked
  Index d_model = 64;                   ///< residual width
  Index layers = 2;                     ///< layers / blocks
  Index heads = 1;                      ///< H
  Index mlp_hidden = 64;                ///< hidden width of the lambda MLP
  Index chunk = 64;                     ///< chunk size C of the chunked form
  Index d_state = 16;                   ///< mamba2 model: K, the state width of q = C and k = B
  Index expand = 2;                     ///< mamba2 model: d_inner = expand * d_model
  Index ffn_hidden = 0;                 ///< mamba2 model: SwiGLU hidden width (0: 4 * d_model)
  /// GEMM arithmetic: fp32 (float32, every device) | tf32 (--device cuda only: cuBLAS rounds the
  /// GEMM inputs to TF32 on the tensor cores; cuda/loglinear/cuda/core/context.hpp, Matmul).
  std::string matmul = "fp32";
  /// Storage of the attention operator's q, k, v: fp32 (every device) | bf16 (--device cuda only:
  /// bfloat16 copies around the tensor-core kernels; cuda/src/nn/attention.cuh).
  std::string attention = "fp32";
};

/// A trainable model in float: forward keeps its cache, backward consumes it.
class Model {
 public:
  virtual ~Model() = default;
  /// Mean cross-entropy over the scored targets of `batch` (nats); caches for backward.
  /// @param batch tokens and targets [B, T]
  /// @param correct if not null, receives the number of scored positions predicted right.
  virtual double forward(const tasks::Batch& batch, Index* correct = nullptr) = 0;
  /// Backward of the last forward: ADDS into every Param::grad.
  virtual void backward() = 0;
  /// Every trainable tensor in checkpoint order (for a GPU model: host copies, current after
  /// download_params()).
  virtual std::vector<Param<float>*> params() = 0;
  /// The checkpoint's architecture entry: a file of another model or decay is rejected.
  virtual std::string architecture() const = 0;
  /// Number of log-linear layers.
  virtual Index num_layers() const = 0;
  /// L, the levels of lambda.
  virtual Index levels() const = 0;
  /// g [B*T, H] of layer `layer` in the last forward. @throws std::invalid_argument "layer: ...".
  virtual const RowMatrix<float>& last_decay(Index layer) const = 0;
  /// lam [B*T, H*L] (column h*L + l) of layer `layer` in the last forward. Throws as last_decay.
  virtual const RowMatrix<float>& last_lambda(Index layer) const = 0;
  /// Sets every gradient to zero.
  virtual void zero_grad() {
    for (auto* p : params()) p->grad.setZero();
  }
  /// For a model whose parameters live on another device (the GPU): copies the values and
  /// gradients from that device into the host Params that params() returns, so that a checkpoint
  /// can read them. A no-op for CPU models, whose params() are the parameters themselves.
  virtual void download_params() {}
  /// The reverse of download_params: copies the host Params' values to the device (after a
  /// checkpoint was loaded into them). A no-op for CPU models.
  virtual void upload_params() {}
};

/// Builds the model named cfg.model for token ids in [0, vocab) and `levels` lambda levels,
/// initialised from `seed`.
/// @throws std::invalid_argument naming the flag (--model, --decay, --lambda, --form, ...) that
///         is unknown or out of range.
std::unique_ptr<Model> make_model(const ModelConfig& cfg, Index vocab, Index levels, std::uint64_t seed);

/// The task model's configuration for cfg (model = task), what make_model builds it from (the GPU
/// device builds the same model through it). @throws std::invalid_argument "--form: ..." for an
/// unknown form.
nn::TaskModelConfig task_model_config(const ModelConfig& cfg, Index vocab, Index levels);

/// The LM's configuration for cfg (model = mamba2), what make_model builds it from (the GPU device
/// builds the same model through it): SPEC.md §8's block with d_inner = expand * d_model = H * V,
/// one group of K = d_state, lambda MLP width mlp_hidden, SwiGLU width ffn_hidden (0: 4 * d_model).
/// @throws std::invalid_argument "--decay: ..." unless cfg.decay is mamba2 (the layer's own decay),
///         "--form: ..." for an unknown form.
nn::LmConfig lm_config(const ModelConfig& cfg, Index vocab, Index levels);

}  // namespace loglinear::train
