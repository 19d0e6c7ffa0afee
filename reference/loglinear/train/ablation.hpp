// Does lambda's adaptation matter? (issue 13, item 5.) After training, the final weights of a task
// model are evaluated on the validation set (and the --eval-len set) three times: with their own
// lambda ("true"), with lambda replaced in every layer by its per-level mean over every position
// of that set ("token_mean"), and by its per-level mean over the positions of each type
// ("type_mean"; the types are the task generator's roles, tasks::PositionTypes). The means come
// from the plain forward of the "true" evaluation, on the same sequences, in the same batches as
// train::evaluate. Everything runs on a CPU twin of the weights, whatever device trained them.
// Cost: three evaluation passes per set (O(3 * size * T) forward tokens).
/// \file
/// \brief The lambda ablation of issue 13 item 5: evaluate with lambda replaced by its means
/// \ingroup floor_train
#pragma once

#include <loglinear/nn/task_model.hpp>
#include <loglinear/train/data.hpp>
#include <loglinear/train/evaluate.hpp>
#include <loglinear/train/model.hpp>

#include <optional>
#include <string>
#include <vector>

namespace loglinear::train {

/// Per layer, lambda of the plain forward averaged over the positions of a dataset (every level
/// of every position, whether or not the position's Fenwick partition uses that level).
struct LambdaMeans {
  std::vector<RowMatrix<float>> token;  ///< per layer [1, H*L]: the mean over every position
  std::vector<RowMatrix<float>> type;   ///< per layer [types, H*L]: the mean per position type
                                        ///< (a type with no position gets the token mean)
};

/// The three evaluations of one dataset.
struct AblationSet {
  Eval truth;       ///< the model's own lambda
  Eval token_mean;  ///< lambda replaced by LambdaMeans::token
  Eval type_mean;   ///< lambda replaced by LambdaMeans::type, by the type of each position
};

/// The result of the ablation of a run.
struct LambdaAblation {
  std::vector<std::string> types;     ///< names of the position types (tasks::PositionTypes::names)
  AblationSet val;                    ///< the validation set
  std::optional<AblationSet> long_val;  ///< the --eval-len set, when there is one
  double seconds = 0;                 ///< wall time of the whole ablation, twin included
};

/// Evaluates `model` with its own lambda, as train::evaluate does, and collects the means of
/// lambda over the same forwards.
/// @param model the CPU task model (its lambda overrides must be clear)
/// @param ds the dataset
/// @param types the type of every position of ds ([ds.size(), T] ids)
/// @param batch sequences per forward (as train::evaluate)
/// @param truth if not null, receives the evaluation with the model's own lambda
/// @throws std::invalid_argument if types.ids is not of ds's shape, and as train::evaluate.
LambdaMeans lambda_means(nn::TaskModel<float>& model, const tasks::Dataset& ds, const tasks::PositionTypes& types,
                         Index batch, Eval* truth = nullptr);

/// Evaluates `model` with the lambda of every layer i replaced, at each position, by
/// tables[i].row(type of the position), in train::evaluate's batches; clears the overrides after.
/// @param model the CPU task model
/// @param ds the dataset
/// @param tables per layer [types, H*L]
/// @param ids [ds.size(), T] type of each position, or null for type 0 everywhere
/// @param batch sequences per forward
/// @throws std::invalid_argument if tables has not one entry per layer, and as
///         nn::TaskModel::forward (a table of the wrong width, an id out of range).
Eval evaluate_with_lambda(nn::TaskModel<float>& model, const tasks::Dataset& ds,
                          const std::vector<RowMatrix<float>>& tables, const Tensor<std::int32_t, 2>* ids,
                          Index batch);

/// The three evaluations of one dataset: lambda_means, then evaluate_with_lambda with the token
/// means and with the type means.
/// @param model the CPU task model
/// @param ds the dataset
/// @param types the type of every position of ds
/// @param batch sequences per forward
/// @throws as lambda_means and evaluate_with_lambda.
AblationSet ablate_lambda_on(nn::TaskModel<float>& model, const tasks::Dataset& ds,
                             const tasks::PositionTypes& types, Index batch);

/// The position types of a set of the run's task, from the task generator's layout
/// (tasks::mqar_position_types, tasks::selective_copy_position_types), at the set's length.
/// @param cfg the run's data settings (task, pairs, copy_tokens)
/// @param ds a set made by TaskData from cfg (the validation or the --eval-len set)
/// @throws std::invalid_argument "--ablate-lambda: ..." for a task without types (lm).
tasks::PositionTypes position_types(const DataConfig& cfg, const tasks::Dataset& ds);

/// A CPU task model holding the current weights of `model`, which may live on another device:
/// download_params() brings them to model.params() (a no-op on the CPU), which are copied, in
/// checkpoint order, into a fresh nn::TaskModel<float> of the same configuration.
/// @param model the trained model (a task model on any device)
/// @param cfg its configuration (train::task_model_config)
/// @throws std::invalid_argument if the parameters' names or shapes differ from cfg's model.
nn::TaskModel<float> cpu_twin(Model& model, const nn::TaskModelConfig& cfg);

/// The ablation of a run's final weights: the CPU twin, then ablate_lambda_on the validation set
/// and, if cfg.data.eval_len > 0, on the --eval-len set, with cfg.data.batch sequences per forward.
/// @param model the trained model
/// @param cfg the run's model settings (must be --model task)
/// @param data_cfg the run's data settings (task mqar or selective_copy)
/// @param data the run's datasets
/// @throws std::invalid_argument "--ablate-lambda: ..." for another model or task.
LambdaAblation run_lambda_ablation(Model& model, const ModelConfig& cfg, const DataConfig& data_cfg,
                                   const TaskData& data);

/// The JSON object of the result: {"true", "token_mean", "type_mean"} each {"accuracy", "loss",
/// "eval_len_accuracy", "eval_len_loss"} (the eval_len ones null without a --eval-len set), then
/// "types" (the names) and "time_s".
/// @param ablation the result of run_lambda_ablation
std::string lambda_ablation_json(const LambdaAblation& ablation);

}  // namespace loglinear::train
