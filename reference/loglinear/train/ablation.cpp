// The lambda ablation (ablation.hpp). The means are summed in double: a constant lambda (the
// `constant` mode) then averages back to itself exactly in float.
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>
#include <loglinear/train/ablation.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace loglinear::train {
namespace {
using json = nlohmann::json;

// The type ids of sequences [begin, begin + B) of `ids`, flattened as the batch's positions.
std::vector<std::int32_t> batch_ids(const Tensor<std::int32_t, 2>& ids, Index begin, Index B) {
  const Index T = ids.dim(1);
  const auto first = ids.values().begin() + begin * T;
  return {first, first + B * T};
}

// Clears every layer's lambda override when it goes out of scope (also when a forward throws).
struct ClearOverrides {
  nn::TaskModel<float>& model;
  ~ClearOverrides() {
    for (Index i = 0; i < model.config().layers; ++i) model.set_lambda_override(i, std::nullopt);
  }
};

void check_types(const tasks::Dataset& ds, const Tensor<std::int32_t, 2>& ids, Index types) {
  if (ids.dim(0) != ds.size() || ids.dim(1) != ds.length())
    throw std::invalid_argument("types.ids: expected the dataset's shape [" + std::to_string(ds.size()) + "," +
                                std::to_string(ds.length()) + "], got [" + std::to_string(ids.dim(0)) + "," +
                                std::to_string(ids.dim(1)) + "]");
  for (const std::int32_t id : ids.values())
    if (id < 0 || id >= types)
      throw std::invalid_argument("types.ids: expected ids in [0, " + std::to_string(types) + "), got " +
                                  std::to_string(id));
}

// Sums of lambda per layer and type (in double) and the number of positions of each type.
struct MeanSums {
  std::vector<Eigen::MatrixXd> sums;  // per layer [types, H*L]
  std::vector<double> counts;         // per type
  MeanSums(Index layers, Index types, Index HL)
      : sums(size_t(layers), Eigen::MatrixXd::Zero(types, HL)), counts(size_t(types), 0.0) {}
  // Adds the last forward's lambda of every layer; ids: the type of each of its positions.
  void add(const nn::TaskModel<float>& model, const std::vector<std::int32_t>& ids) {
    for (size_t i = 0; i < sums.size(); ++i) {
      const RowMatrix<float>& lam = model.last_lambda(Index(i));
      for (Index n = 0; n < lam.rows(); ++n) sums[i].row(ids[size_t(n)]) += lam.row(n).cast<double>();
    }
    for (const std::int32_t id : ids) counts[size_t(id)] += 1;
  }
  // The token means (over every position) and the type means (the token mean for an empty type).
  LambdaMeans means() const {
    double total = 0;
    for (const double c : counts) total += c;
    LambdaMeans out;
    for (const Eigen::MatrixXd& s : sums) {
      const Eigen::RowVectorXd token = s.colwise().sum() / std::max(total, 1.0);
      RowMatrix<float> type(s.rows(), s.cols());
      for (Index k = 0; k < s.rows(); ++k)
        type.row(k) = (counts[size_t(k)] > 0 ? Eigen::RowVectorXd(s.row(k) / counts[size_t(k)]) : token).cast<float>();
      out.token.push_back(RowMatrix<float>(token.cast<float>()));
      out.type.push_back(std::move(type));
    }
    return out;
  }
};

json eval_json(const Eval& val, const std::optional<Eval>& long_val) {
  return {{"accuracy", val.accuracy}, {"loss", val.loss},
          {"eval_len_accuracy", long_val ? json(long_val->accuracy) : json(nullptr)},
          {"eval_len_loss", long_val ? json(long_val->loss) : json(nullptr)}};
}

}  // namespace

LambdaMeans lambda_means(nn::TaskModel<float>& model, const tasks::Dataset& ds, const tasks::PositionTypes& types,
                         Index batch, Eval* truth) {
  const Index K = Index(types.names.size());
  check_types(ds, types.ids, K);
  MeanSums sums(model.config().layers, K, model.config().heads * model.config().levels);
  const Eval ev = evaluate_batches(ds, batch, [&](const tasks::Batch& part, Index begin, Index* correct) {
    const double loss = model.forward(part, correct);
    sums.add(model, batch_ids(types.ids, begin, part.tokens.dim(0)));
    return loss;
  });
  if (truth) *truth = ev;
  return sums.means();
}

Eval evaluate_with_lambda(nn::TaskModel<float>& model, const tasks::Dataset& ds,
                          const std::vector<RowMatrix<float>>& tables, const Tensor<std::int32_t, 2>* ids,
                          Index batch) {
  const Index layers = model.config().layers;
  if (Index(tables.size()) != layers)
    throw std::invalid_argument("tables: expected one per layer (" + std::to_string(layers) + "), got " +
                                std::to_string(tables.size()));
  const ClearOverrides guard{model};
  return evaluate_batches(ds, batch, [&](const tasks::Batch& part, Index begin, Index* correct) {
    const Index B = part.tokens.dim(0);
    const std::vector<std::int32_t> types =
        ids ? batch_ids(*ids, begin, B) : std::vector<std::int32_t>(size_t(B * part.tokens.dim(1)), 0);
    for (Index i = 0; i < layers; ++i) model.set_lambda_override(i, nn::LambdaOverride<float>{tables[size_t(i)], types});
    return model.forward(part, correct);
  });
}

AblationSet ablate_lambda_on(nn::TaskModel<float>& model, const tasks::Dataset& ds,
                             const tasks::PositionTypes& types, Index batch) {
  AblationSet out;
  const LambdaMeans means = lambda_means(model, ds, types, batch, &out.truth);
  out.token_mean = evaluate_with_lambda(model, ds, means.token, nullptr, batch);
  out.type_mean = evaluate_with_lambda(model, ds, means.type, &types.ids, batch);
  return out;
}

tasks::PositionTypes position_types(const DataConfig& cfg, const tasks::Dataset& ds) {
  if (cfg.task == "mqar") return tasks::mqar_position_types({ds.length(), cfg.pairs, 128}, ds.size());
  if (cfg.task == "selective_copy")
    return tasks::selective_copy_position_types({ds.length(), cfg.copy_tokens}, ds);
  throw std::invalid_argument("--ablate-lambda: expected --task mqar or selective_copy (tasks whose generator "
                              "types every position), got \"" + cfg.task + "\"");
}

nn::TaskModel<float> cpu_twin(Model& model, const nn::TaskModelConfig& cfg) {
  model.download_params();
  const std::vector<Param<float>*> from = model.params();
  nn::TaskModel<float> twin(cfg, 0);  // every value is overwritten below
  const std::vector<Param<float>*> to = twin.params();
  if (from.size() != to.size())
    throw std::invalid_argument("model: expected the " + std::to_string(to.size()) + " parameters of a task model, got " +
                                std::to_string(from.size()));
  for (size_t i = 0; i < to.size(); ++i) {
    const RowMatrix<float>& src = from[i]->value;
    if (from[i]->name != to[i]->name || src.rows() != to[i]->value.rows() || src.cols() != to[i]->value.cols())
      throw std::invalid_argument("model: parameter " + std::to_string(i) + " is \"" + from[i]->name +
                                  "\", expected \"" + to[i]->name + "\" of the same shape");
    to[i]->value = src;
  }
  return twin;
}

LambdaAblation run_lambda_ablation(Model& model, const ModelConfig& cfg, const DataConfig& data_cfg,
                                   const TaskData& data) {
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.model != "task")
    throw std::invalid_argument("--ablate-lambda: expected --model task, got \"" + cfg.model + "\"");
  const tasks::PositionTypes val_types = position_types(data_cfg, data.val());
  nn::TaskModel<float> twin = cpu_twin(model, task_model_config(cfg, data.vocab(), model.levels()));
  LambdaAblation out;
  out.types = val_types.names;
  out.val = ablate_lambda_on(twin, data.val(), val_types, data_cfg.batch);
  if (data_cfg.eval_len > 0)
    out.long_val = ablate_lambda_on(twin, data.long_val(), position_types(data_cfg, data.long_val()), data_cfg.batch);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::string lambda_ablation_json(const LambdaAblation& a) {
  auto part = [&](Eval AblationSet::*which) {
    return eval_json(a.val.*which, a.long_val ? std::optional<Eval>((*a.long_val).*which) : std::nullopt);
  };
  const json j = {{"true", part(&AblationSet::truth)}, {"token_mean", part(&AblationSet::token_mean)},
                  {"type_mean", part(&AblationSet::type_mean)}, {"types", a.types}, {"time_s", a.seconds}};
  return j.dump();
}

}  // namespace loglinear::train
