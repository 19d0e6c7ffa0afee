// The model of the adaptive-decay synthetic tasks (SPEC.md §8, last paragraph): embedding ->
// N log-linear attention layers (q/k/v/dt/dl projections, a decay parameterisation from decay/
// (Mamba-2 by default, SPEC.md §14), a lambda parameterisation from lambda/, out_proj, post-norm
// residual) -> LayerNorm -> LM head. With mixer "gdn" each layer runs the log-linear Gated
// DeltaNet operator instead (SPEC.md §6: q, k L2-normalised, beta = sigmoid(x Wb^T)). Forward and handwritten backward end to end, llm.c style:
// forward keeps its cache, backward consumes it. The operator runs in any form (chunked by
// default). nn/lm.hpp is the full log-linear Mamba-2 sibling.
/// \file
/// \brief The model of the adaptive-decay synthetic tasks (SPEC.md §8, last paragraph)
/// \ingroup floor_nn
#pragma once

#include <loglinear/attention/forms.hpp>
#include <loglinear/core/param.hpp>
#include <loglinear/nn/layernorm.hpp>
#include <loglinear/tasks/task.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace loglinear::decay {
template <class Scalar>
class DecayStack;
}
namespace loglinear::lambda {
template <class Scalar>
class LevelWeights;
}

namespace loglinear::nn {

/// Sizes and choices of the task model (defaults: the sources' MQAR model).
struct TaskModelConfig {
  Index vocab = 128;       ///< token vocabulary
  Index d_model = 64;      ///< residual width; K = V = d_model / heads
  Index layers = 2;        ///< log-linear layers
  Index heads = 1;         ///< H
  Index levels = 8;        ///< L_max of lambda: num_levels of the longest sequence to be seen
  Index mlp_hidden = 64;   ///< hidden width of the lambda MLP
  Index chunk = 64;        ///< chunk size of the chunked form
  /// Lambda parameterisation, a key of lambda::lambda_names() (fixed, constant, mlp_softplus,
  /// mlp_softmax).
  std::string lambda = "mlp_softplus";
  Form form = Form::chunked;  ///< operator form
  /// Decay parameterisation, a key of decay::decay_names() (mamba2, gla, hgrn2, lightnet, tnl,
  /// tnl_l, simple_decay), one per layer through decay::make_decay_stack with heads = H
  /// (tnl needs heads >= 2 and layers >= 2), other options at their defaults.
  std::string decay = "mamba2";
  /// The operator of every layer: "mamba2" (the log-linear Mamba-2 operator, SPEC.md §8's toy
  /// model) or "gdn" (log-linear Gated DeltaNet, SPEC.md §6: the same layer with q and k
  /// L2-normalised per head and a write strength beta = sigmoid(x Wb^T) [N, H]; everything else,
  /// the decay and lambda included, as for mamba2, so that the two compare fairly).
  std::string mixer = "mamba2";
  /// simple_decay's initial decay rate p in (0, 1) (DecayOptions::p; the other decays ignore it).
  double decay_p = 0.99;
};

/// The checks of a batch that TaskModel::forward (and its GPU twin) make before using it:
/// targets of the tokens' shape, tokens in [0, vocab), targets in [-1, vocab), and T within the
/// model's levels.
/// @throws std::invalid_argument naming batch.tokens, batch.targets or the batch length.
void check_batch(const tasks::Batch& batch, Index vocab, Index levels);

/// A replacement of one layer's lambda for forward-only experiments (train/ablation.hpp): at
/// position n of the batch (n = b*T + t) the layer uses table.row(types[n]) instead of the lambda
/// its parameterisation computes from the token.
template <class Scalar>
struct LambdaOverride {
  RowMatrix<Scalar> table;          ///< [types, H*L] one lambda row per type (column h*L + l)
  std::vector<std::int32_t> types;  ///< [B*T] type of each position of the batch, in [0, table.rows())
};

/// The synthetic-task model; parameters in float or double (gradient checks use double).
template <class Scalar>
class TaskModel {
 public:
  /// Builds and initialises the model from `seed` (deterministic): embedding, lm_head and per
  /// layer Wq, Wk, Wv, Wdl, [Wdt], Wo N(0, 0.02) (Wo 0.01) from one generator in that order;
  /// lambda, the decays and (mixer gdn) Wb N(0, 0.02) draw from generators of their own, so the
  /// mode, decay or mixer chosen does not shift the other draws: the gdn model starts from the
  /// mamba2 model's weights plus Wb.
  /// @throws std::invalid_argument if d_model is not divisible by heads or a size is < 1,
  ///         "mixer: ..." for a mixer other than mamba2 and gdn, and as decay::make_decay /
  ///         lambda::make_level_weights for an unknown key (the message lists the known ones).
  TaskModel(const TaskModelConfig& cfg, std::uint64_t seed);
  ~TaskModel();                       ///< out of line: Layer is complete only in the .cpp
  TaskModel(TaskModel&&) noexcept;    ///< movable, not copyable

  /// Forward on a batch: the mean cross-entropy over the scored targets in nats. Caches every
  /// intermediate and d(loss)/d(logits) for backward.
  /// @param batch tokens and targets [B, T]
  /// @param correct if not null, receives the number of scored positions predicted right.
  /// @throws std::invalid_argument if a token is outside [0, vocab), a target outside
  ///         [-1, vocab), or T needs more levels than the model has.
  double forward(const tasks::Batch& batch, Index* correct = nullptr);
  /// Backward of the last forward: ADDS into every Param::grad (call zero_grad first).
  /// @throws std::logic_error if forward has not run since the last backward, or if a lambda
  ///         override is set or was used by the last forward (overrides are forward-only).
  void backward();

  /// Sets (or, with std::nullopt, clears) the lambda override of layer `layer`: every later
  /// forward feeds the attention of that layer with the override's rows instead of the lambda of
  /// its parameterisation (whose forward is then skipped); last_lambda returns what was used.
  /// Forward-only: backward refuses to run. Without overrides forward is unchanged.
  /// @param layer the layer, 0 <= layer < layers
  /// @param override_ the table and the per-position types for the batches of the next forwards
  ///        (forward checks table.cols() == H*L, types.size() == B*T and every type id in range,
  ///        throwing std::invalid_argument "lambda override of layer i: ...")
  /// @throws std::invalid_argument "layer: ..." if layer is out of range.
  void set_lambda_override(Index layer, std::optional<LambdaOverride<Scalar>> override_);

  /// Every trainable tensor, in a fixed order (the checkpoint order): embedding, norm_f.gamma,
  /// norm_f.beta, lm_head, the decay's shared ones (hgrn2.Gamma [layers, H]); per layer
  /// "layers.i.": Wq, Wk, Wv, Wdl, [Wdt], [Wb], the decay's own (mamba2: dt_bias, A_log;
  /// simple_decay: Delta; tnl_l: theta), Wo, norm.gamma, norm.beta, then lambda's. Wdt [H, d]
  /// (u = x Wdt^T, the decay's pre-activation, SPEC.md §14.1) exists only for data-dependent decays;
  /// Wb [H, d] (beta = sigmoid(x Wb^T), SPEC.md §6) only with mixer gdn.
  std::vector<Param<Scalar>*> params();
  /// What the checkpoint's architecture entry records: "task_model lambda=<mode> decay=<key>",
  /// followed by " mixer=gdn" with mixer gdn (names and shapes alone cannot tell apart decays
  /// without parameters, or the two MLP modes; mamba2 files keep the entry they always had).
  std::string architecture() const;
  /// Sets every gradient to zero.
  void zero_grad();
  /// The configuration.
  const TaskModelConfig& config() const { return cfg_; }
  /// The per-layer decays and their shared parameters (the GPU twin, cuda/nn/task_model.hpp, is
  /// built from them).
  decay::DecayStack<Scalar>& decays() { return *decays_; }
  /// Layer `layer`'s lambda parameterisation. @throws std::invalid_argument "layer: ..." if out of range.
  lambda::LevelWeights<Scalar>& level_weights(Index layer);

  /// The log-decay g [B*T, H] of layer `layer` in the last forward (train/stats.hpp summarises it).
  /// @throws std::invalid_argument "layer: ..." if layer is out of range.
  const RowMatrix<Scalar>& last_decay(Index layer) const;
  /// lambda [B*T, H*L] (column h*L + l) of layer `layer` in the last forward. Throws as last_decay.
  const RowMatrix<Scalar>& last_lambda(Index layer) const;

 private:
  struct Layer;
  const Layer& layer_at(Index layer) const;  // throws "layer: ..." when out of range
  TaskModelConfig cfg_;
  std::vector<Param<Scalar>> top_;                       // embedding, final norm, head
  std::unique_ptr<decay::DecayStack<Scalar>> decays_;    // one decay per layer (+ shared params)
  std::vector<std::unique_ptr<Layer>> layers_;
  // Cache of the last forward.
  Index B_ = 0, T_ = 0;
  std::vector<std::int32_t> tokens_;
  RowMatrix<Scalar> x_final_, dlogits_;
  LayerNormCache<Scalar> ln_final_;
  bool overridden_ = false;  // the last forward used a lambda override
};

}  // namespace loglinear::nn
