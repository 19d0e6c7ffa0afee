// The model of the adaptive-decay synthetic tasks (SPEC.md §8, last paragraph): embedding ->
// N log-linear attention layers (q/k/v/dt/dl projections, a decay parameterisation from decay/
// (Mamba-2 by default, SPEC.md §14), a lambda parameterisation, out_proj, post-norm residual)
// -> LayerNorm -> LM head. Forward and handwritten backward end to end; the operator runs in any
// form (chunked by default). nn/lm.hpp is the full log-linear Mamba-2 sibling.
#pragma once

#include <loglinear/attention/forms.hpp>
#include <loglinear/models/layers.hpp>
#include <loglinear/models/level_weights.hpp>
#include <loglinear/tasks/task.hpp>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace loglinear::models {

/// Sizes and choices of the task model (defaults: the sources' MQAR model).
struct TaskModelConfig {
  Index vocab = 128;       ///< token vocabulary
  Index d_model = 64;      ///< residual width; K = V = d_model / heads
  Index layers = 2;        ///< log-linear layers
  Index heads = 1;         ///< H
  Index levels = 8;        ///< L_max of lambda: num_levels of the longest sequence to be seen
  Index mlp_hidden = 64;   ///< hidden width of the lambda MLP
  Index chunk = 64;        ///< chunk size of the chunked form
  LambdaMode lambda = LambdaMode::mlp_softplus;  ///< lambda parameterisation
  Form form = Form::chunked;                     ///< operator form
  /// Decay parameterisation, a key of decay::decay_names() (mamba2, gla, hgrn2, lightnet, tnl,
  /// tnl_l, simple_decay); built per layer by decay::make_decay with heads = H, layer = i and
  /// num_layers = layers (tnl needs heads >= 2 and layers >= 2), other options at their defaults.
  std::string decay = "mamba2";
};

/// Summary of a tensor's values over tokens (and heads).
struct ValueStats {
  double mean = 0;    ///< arithmetic mean
  double std = 0;     ///< population standard deviation
  double min = 0;     ///< smallest value
  double max = 0;     ///< largest value
  double median = 0;  ///< middle value of the sorted list
};

/// ValueStats of a sample (all zero when it is empty); the median is the upper middle element.
ValueStats value_stats(std::vector<double> xs);

/// The synthetic-task model; parameters in float or double (gradient checks use double).
template <class Scalar>
class TaskModel {
 public:
  /// Builds and initialises the model from `seed` (deterministic). With decay = "mamba2" the
  /// initial values are those of the model before the decay became selectable (same draws).
  /// @throws std::invalid_argument if d_model is not divisible by heads or a size is < 1, and
  ///         as decay::make_decay for an unknown decay key (the message lists the known ones).
  TaskModel(const TaskModelConfig& cfg, std::uint64_t seed);
  ~TaskModel();                       ///< out of line: Layer is complete only in the .cpp
  TaskModel(TaskModel&&) noexcept;    ///< movable, not copyable

  /// Forward (and, if `backward`, backward) on a batch; returns the mean cross-entropy over the
  /// scored targets in nats. Backward adds into every Param::grad (call zero_grad first).
  /// @param batch tokens and targets [B, T]; @param backward also run the backward pass
  /// @param correct if not null, receives the number of scored positions predicted right.
  /// @throws std::invalid_argument if a token is outside [0, vocab) or T needs more levels.
  double step(const tasks::Batch& batch, bool backward, Index* correct = nullptr);

  /// Every trainable tensor, in a fixed order (the checkpoint order): embedding, norm_f.gamma,
  /// norm_f.beta, lm_head, [hgrn2.Gamma]; per layer "layers.i.": Wq, Wk, Wv, Wdl, [Wdt], the
  /// decay's own (mamba2: dt_bias, A_log; simple_decay: Delta; tnl_l: theta), Wo, norm.gamma,
  /// norm.beta, then lambda's. Wdt [H, d] (u = x Wdt^T, the decay's pre-activation, SPEC.md §14.1)
  /// exists only for data-dependent decays; hgrn2.Gamma [layers, H] (init 1) is HGRN2's lower-bound
  /// table, lb of layer i = hgrn2_lower_bounds(Gamma) row i.
  std::vector<Param<Scalar>*> params();
  /// What the checkpoint's architecture entry records: "task_model lambda=<mode> decay=<key>"
  /// (names and shapes alone cannot tell apart decays without parameters, or the two MLP modes).
  std::string architecture() const;
  /// Sets every gradient to zero.
  void zero_grad();
  /// The configuration.
  const TaskModelConfig& config() const { return cfg_; }

  /// Lambda of the last forward, per layer and level, over all tokens and heads.
  std::vector<std::vector<ValueStats>> lambda_stats() const;
  /// exp(g) (the per-token decay) of the last forward, per layer, over all tokens and heads.
  std::vector<ValueStats> decay_stats() const;
  /// Lambda of the last forward for one layer and sequence: [T, H*L] (for heatmaps).
  RowMatrix<Scalar> lambda_of(Index layer, Index sequence) const;
  /// The log-decay g [B*T, H] and lambda [B*T, H*L] (column h*L + l) of every layer in the last
  /// forward, for train::collect_diagnostics.
  /// @throws std::invalid_argument "layer: ..." if layer is out of range.
  const RowMatrix<Scalar>& last_decay(Index layer) const;
  /// See last_decay.
  const RowMatrix<Scalar>& last_lambda(Index layer) const;

 private:
  struct Layer;
  const Layer& layer_at(Index layer) const;  // throws "layer: ..." when out of range
  TaskModelConfig cfg_;
  std::vector<Param<Scalar>> top_;           // embedding, final norm, head
  std::optional<Param<Scalar>> gamma_;       // hgrn2's lower-bound table [layers, H]
  std::vector<std::unique_ptr<Layer>> layers_;
  // Cache of the last forward.
  Index B_ = 0, T_ = 0;
  std::vector<std::int32_t> tokens_;
  RowMatrix<Scalar> x_final_;
  LayerNormCache<Scalar> ln_final_;
};

}  // namespace loglinear::models
