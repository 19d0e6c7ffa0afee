// train/ablation (issue 13 item 5) and the lambda override of nn::TaskModel it runs on: the
// override with the true lambda as its table reproduces the plain forward bit for bit, and a
// changed table changes the loss; overrides are forward-only; for the input-independent
// `constant` mode the token and type means leave the accuracy and loss unchanged, while for the
// data-dependent `fixed` mode they move the loss; the position types follow the generators'
// layouts (checked against the targets and tokens they wrote); and a short run with
// --ablate-lambda writes "lambda_ablation", whose "true" entry is the run's final evaluation.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/nn/task_model.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>
#include <loglinear/train/ablation.hpp>
#include <loglinear/train/trainer.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using json = nlohmann::json;

namespace {

constexpr Index kT = 32, kPairs = 4, kVocab = 128;

// A task model of 2 layers and 2 heads on MQAR with T = 32 (L = num_levels(32)).
nn::TaskModel<float> small_model(const std::string& lambda, std::uint64_t seed = 7) {
  const nn::TaskModelConfig cfg{kVocab, 16, 2, 2, num_levels(kT), 8, 8, lambda, Form::chunked, "mamba2"};
  return nn::TaskModel<float>(cfg, seed);
}

// Scales every parameter named `suffix` so that lambda (and the embedding it reads) vary visibly
// between tokens: at the default init a 0.02-scale projection leaves lambda nearly constant.
void scale_params(nn::TaskModel<float>& model, const std::string& suffix, float factor) {
  for (auto* p : model.params())
    if (p->name.size() >= suffix.size() && p->name.compare(p->name.size() - suffix.size(), suffix.size(), suffix) == 0)
      p->value *= factor;
}

// Random per-head, per-level values of the constant mode's c, so that its lambda is not uniform.
void randomise_constant(nn::TaskModel<float>& model) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> n(0.f, 1.f);
  for (auto* p : model.params())
    if (p->name.find("lambda.c") != std::string::npos) p->value = p->value.unaryExpr([&](float) { return n(rng); });
}

TrainConfig tiny_ablation_run(const std::string& task) {
  TrainConfig c;
  c.data.task = task;
  c.data.length = 16;
  c.data.pairs = 2;
  c.data.copy_tokens = 3;
  c.data.eval_len = 32;
  c.data.train_size = 16;
  c.data.val_size = 10;  // batch 4: two full batches and a partial one
  c.data.batch = 4;
  c.model.d_model = 8;
  c.model.layers = 2;
  c.model.mlp_hidden = 4;
  c.steps = 3;
  c.eval_every = 3;
  c.early_stop = 100;
  c.progress = false;
  c.ablate_lambda = true;
  return c;
}

}  // namespace

TEST_CASE("set_lambda_override: the true lambda as the table reproduces the plain forward exactly",
          "[train][ablation][task_model]") {
  const std::string mode = GENERATE(as<std::string>{}, "mlp_softplus", "fixed", "mlp_softmax");
  CAPTURE(mode);
  nn::TaskModel<float> model = small_model(mode);
  scale_params(model, "Wdl", 20.f);
  const tasks::Dataset ds = tasks::make_mqar({kT, kPairs, kVocab}, 3, 5);
  Index correct = 0;
  const double loss = model.forward(ds.data, &correct);
  std::vector<RowMatrix<float>> lam;
  for (Index i = 0; i < 2; ++i) lam.push_back(model.last_lambda(i));
  // One type per position: type n is position n, whose table row is its own lambda.
  std::vector<std::int32_t> ids(size_t(3 * kT));
  std::iota(ids.begin(), ids.end(), 0);
  for (Index i = 0; i < 2; ++i) model.set_lambda_override(i, nn::LambdaOverride<float>{lam[size_t(i)], ids});
  Index correct_o = -1;
  CHECK(model.forward(ds.data, &correct_o) == loss);  // bit for bit: the same values reach the operator
  CHECK(correct_o == correct);
  for (Index i = 0; i < 2; ++i) CHECK(model.last_lambda(i) == lam[size_t(i)]);
  // The table is what the attention reads: halving it changes the loss.
  model.set_lambda_override(1, nn::LambdaOverride<float>{lam[1] * 0.5f, ids});
  CHECK(model.forward(ds.data) != loss);
  // Cleared, the model is its plain self again.
  for (Index i = 0; i < 2; ++i) model.set_lambda_override(i, std::nullopt);
  CHECK(model.forward(ds.data) == loss);
}

TEST_CASE("set_lambda_override: forward-only, and refuses tables and ids that do not fit",
          "[train][ablation][task_model][errors]") {
  nn::TaskModel<float> model = small_model("mlp_softplus");
  const tasks::Dataset ds = tasks::make_mqar({kT, kPairs, kVocab}, 2, 5);
  const Index HL = 2 * num_levels(kT), N = 2 * kT;
  CHECK_THROWS_WITH(model.set_lambda_override(2, std::nullopt), ContainsSubstring("layer: expected 0 <= layer < 2"));
  model.set_lambda_override(0, nn::LambdaOverride<float>{RowMatrix<float>::Ones(1, HL), std::vector<std::int32_t>(size_t(N), 0)});
  model.forward(ds.data);
  CHECK_THROWS_WITH(model.backward(), ContainsSubstring("lambda override"));
  model.set_lambda_override(0, std::nullopt);
  CHECK_THROWS_WITH(model.backward(), ContainsSubstring("was used by the last forward"));  // cleared too late
  model.forward(ds.data);
  CHECK_NOTHROW(model.backward());
  model.set_lambda_override(1, nn::LambdaOverride<float>{RowMatrix<float>::Ones(1, HL + 1), std::vector<std::int32_t>(size_t(N), 0)});
  CHECK_THROWS_WITH(model.forward(ds.data), ContainsSubstring("lambda override of layer 1: expected a table of H*L"));
  model.set_lambda_override(1, nn::LambdaOverride<float>{RowMatrix<float>::Ones(2, HL), std::vector<std::int32_t>(size_t(N), 2)});
  CHECK_THROWS_WITH(model.forward(ds.data), ContainsSubstring("expected type ids in [0, 2), got 2"));
  model.set_lambda_override(1, nn::LambdaOverride<float>{RowMatrix<float>::Ones(1, HL), std::vector<std::int32_t>(size_t(N - 1), 0)});
  CHECK_THROWS_WITH(model.forward(ds.data), ContainsSubstring("types (B*T)"));
}

TEST_CASE("ablate_lambda_on: with the constant mode the means change nothing; with fixed they do",
          "[train][ablation][property]") {
  const tasks::Dataset ds = tasks::make_mqar({kT, kPairs, kVocab}, 10, 9);
  const tasks::PositionTypes types = tasks::mqar_position_types({kT, kPairs, kVocab}, ds.size());
  SECTION("constant: lambda does not depend on the token, so its means are itself") {
    nn::TaskModel<float> model = small_model("constant");
    randomise_constant(model);
    for (const char* name : {"embedding", "Wq", "Wk", "Wv", "Wo", "lm_head"}) scale_params(model, name, 50.f);
    const AblationSet a = ablate_lambda_on(model, ds, types, 4);
    // The means are summed in double, where n copies of one float add exactly, so each mean is the
    // float itself and the forwards are bit-identical; 1e-6 relative covers a future summation
    // order. Accuracy is a ratio of integer counts: equal.
    for (const Eval& e : {a.token_mean, a.type_mean}) {
      CHECK(std::abs(e.loss - a.truth.loss) <= 1e-6 * a.truth.loss);
      CHECK(e.accuracy == a.truth.accuracy);
    }
    // Lambda does reach the loss in this model: another constant (every other level damped; a
    // uniform scale would mostly cancel in the post-norm) moves it.
    std::vector<RowMatrix<float>> other = lambda_means(model, ds, types, 4).token;
    for (auto& t : other)
      for (Index j = 0; j < t.cols(); ++j) t(0, j) *= j % 2 ? 1.f : 0.1f;
    CHECK(std::abs(evaluate_with_lambda(model, ds, other, nullptr, 4).loss - a.truth.loss) > 1e-4 * a.truth.loss);
  }
  SECTION("fixed: lambda = softplus(Lp * dl) depends on the token, so replacing it moves the loss") {
    nn::TaskModel<float> model = small_model("fixed");
    // Large enough that the attention output (0.01-scale Wo at init) weighs in the residual.
    for (const char* name : {"Wdl", "embedding", "Wq", "Wk", "Wv", "Wo", "lm_head"}) scale_params(model, name, 50.f);
    const AblationSet a = ablate_lambda_on(model, ds, types, 4);
    CHECK(std::abs(a.token_mean.loss - a.truth.loss) > 1e-4 * a.truth.loss);
    CHECK(std::abs(a.type_mean.loss - a.truth.loss) > 1e-4 * a.truth.loss);
  }
}

TEST_CASE("ablate_lambda_on: the truth is train::evaluate, and the means are those of the plain forward",
          "[train][ablation][property]") {
  nn::TaskModel<float> model = small_model("fixed");
  scale_params(model, "Wdl", 20.f);
  const tasks::Dataset ds = tasks::make_mqar({kT, kPairs, kVocab}, 5, 3);
  const tasks::PositionTypes types = tasks::mqar_position_types({kT, kPairs, kVocab}, ds.size());
  Eval truth;
  const LambdaMeans means = lambda_means(model, ds, types, 2, &truth);
  // The oracle: one forward over the whole set; its mean and its loss.
  Index correct = 0;
  const double loss = model.forward(ds.data, &correct);
  CHECK(std::abs(truth.loss - loss) <= 1e-5 * loss);  // float logits summed in another grouping
  CHECK(truth.accuracy == 100.0 * double(correct) / double(ds.data.scored()));
  for (Index i = 0; i < 2; ++i) {
    const RowMatrix<float>& lam = model.last_lambda(i);
    const RowMatrix<float> mean = lam.colwise().mean();
    CHECK((means.token[size_t(i)] - mean).cwiseAbs().maxCoeff() <= 1e-5f);
    RowMatrix<float> key_sum = RowMatrix<float>::Zero(1, lam.cols());
    Index keys = 0;
    for (Index n = 0; n < lam.rows(); ++n)
      if (types.ids.values()[size_t(n)] == 0) key_sum += lam.row(n), ++keys;
    CHECK((means.type[size_t(i)].row(0) - key_sum / float(keys)).cwiseAbs().maxCoeff() <= 1e-5f);
  }
  CHECK(means.type[0].rows() == Index(types.names.size()));
  // Evaluated in batches of 2, the token means give what one forward of the whole set with the
  // same override gives (null ids: type 0 everywhere).
  const Eval token = evaluate_with_lambda(model, ds, means.token, nullptr, 2);
  for (Index i = 0; i < 2; ++i)
    model.set_lambda_override(i, nn::LambdaOverride<float>{means.token[size_t(i)],
                                                           std::vector<std::int32_t>(size_t(5 * kT), 0)});
  Index correct_o = 0;
  const double loss_o = model.forward(ds.data, &correct_o);
  CHECK(std::abs(token.loss - loss_o) <= 1e-5 * loss_o);
  CHECK(token.accuracy == 100.0 * double(correct_o) / double(ds.data.scored()));
  for (Index i = 0; i < 2; ++i) model.set_lambda_override(i, std::nullopt);
  CHECK_THROWS_WITH(evaluate_with_lambda(model, ds, {means.token[0]}, nullptr, 2),
                    ContainsSubstring("tables: expected one per layer (2), got 1"));
  CHECK_NOTHROW(model.forward(ds.data));  // the overrides were cleared after evaluating
  CHECK_NOTHROW(model.backward());
}

TEST_CASE("mqar_position_types: keys, values and queries are where the generator put them",
          "[train][ablation][tasks]") {
  const Index T = GENERATE(16, 37, 64), n = GENERATE(1, 4);
  CAPTURE(T, n);
  const tasks::Dataset ds = tasks::make_mqar({T, n, kVocab}, 6, 17);
  const tasks::PositionTypes types = tasks::mqar_position_types({T, n, kVocab}, ds.size());
  REQUIRE(types.names == std::vector<std::string>{"key", "value", "query", "filler"});
  for (Index b = 0; b < ds.size(); ++b) {
    std::vector<Index> count(4, 0);
    std::set<std::int32_t> keys, queried;
    for (Index p = 0; p < T; ++p) {
      const std::int32_t id = types.ids(b, p), tok = ds.data.tokens(b, p);
      ++count[size_t(id)];
      CHECK((id == 2) == (ds.data.targets(b, p) != tasks::kIgnore));  // queries are the scored positions
      if (id == 0) {
        keys.insert(tok);
        CHECK(tok < kVocab / 2);
        CHECK(types.ids(b, p + 1) == 1);  // its value follows it
      }
      if (id == 1) CHECK(tok >= kVocab / 2);
      if (id == 2) queried.insert(tok);
    }
    CHECK(count == std::vector<Index>{n, n, n, T - 3 * n});
    CHECK(Index(keys.size()) == n);  // distinct keys
    CHECK(queried == keys);          // each stored key is queried once
  }
  CHECK_THROWS_AS(tasks::mqar_position_types({8, 3, kVocab}, 1), std::invalid_argument);
}

TEST_CASE("selective_copy_position_types: the data tokens are the targets, in order",
          "[train][ablation][tasks]") {
  using V = tasks::SelectiveCopyVocab;
  const Index T = GENERATE(9, 40), n = GENERATE(1, 4);
  CAPTURE(T, n);
  const tasks::SelectiveCopyOptions opts{T, n};
  const tasks::Dataset ds = tasks::make_selective_copy(opts, 5, 23);
  const tasks::PositionTypes types = tasks::selective_copy_position_types(opts, ds);
  REQUIRE(types.names == std::vector<std::string>{"data", "noise", "query"});
  for (Index b = 0; b < ds.size(); ++b) {
    std::vector<std::int32_t> data, targets;
    Index queries = 0;
    for (Index p = 0; p < T; ++p) {
      const std::int32_t id = types.ids(b, p), tok = ds.data.tokens(b, p);
      if (id == 0) data.push_back(tok);
      if (id == 1) CHECK((tok >= V::noise_first && tok <= V::noise_last));
      if (id == 2) {
        ++queries;
        CHECK((tok == V::separator || tok == V::blank));
      }
      if (ds.data.targets(b, p) != tasks::kIgnore) {
        targets.push_back(ds.data.targets(b, p));
        CHECK(id == 2);
      }
    }
    CHECK(data == targets);      // the copy is the data tokens in order of position
    CHECK(queries == n + 1);     // the separator and n blanks
  }
  CHECK_THROWS_WITH(tasks::selective_copy_position_types({T + 1, n}, ds), ContainsSubstring("ds: expected sequences of length"));
  tasks::Dataset other = ds;
  other.data.tokens(0, 0) = other.data.tokens(0, 0) >= V::noise_first ? V::data_first : V::noise_first;  // flip a role
  CHECK_THROWS_WITH(tasks::selective_copy_position_types(opts, other), ContainsSubstring("data tokens in the input phase"));
}

TEST_CASE("run_training --ablate-lambda: writes true, token_mean and type_mean; true is the final evaluation",
          "[train][ablation][trainer]") {
  const std::string task = GENERATE(as<std::string>{}, "mqar", "selective_copy");
  CAPTURE(task);
  TrainConfig c = tiny_ablation_run(task);
  const json result = json::parse(run_training(c));
  REQUIRE(result.contains("lambda_ablation"));
  const json& a = result.at("lambda_ablation");
  for (const char* entry : {"true", "token_mean", "type_mean"}) {
    CAPTURE(entry);
    for (const char* key : {"accuracy", "loss", "eval_len_accuracy", "eval_len_loss"}) {
      CAPTURE(key);
      REQUIRE(a.at(entry).at(key).is_number());
    }
    CHECK(a.at(entry).at("accuracy").get<double>() >= 0);
    CHECK(a.at(entry).at("accuracy").get<double>() <= 100);
  }
  // The twin holds the final weights: on the CPU its true evaluation is the run's own.
  CHECK(a.at("true").at("accuracy").get<double>() == result.at("final_accuracy").get<double>());
  CHECK(a.at("true").at("loss").get<double>() == result.at("final_val_loss").get<double>());
  CHECK(a.at("true").at("eval_len_accuracy").get<double>() == result.at("eval_len_accuracy").get<double>());
  const TaskData data(c.data);
  CHECK(a.at("types").get<std::vector<std::string>>() == position_types(c.data, data.val()).names);
  c.ablate_lambda = false;
  CHECK_FALSE(json::parse(run_training(c)).contains("lambda_ablation"));
}

TEST_CASE("run_training --ablate-lambda: without an --eval-len set the eval_len entries are null",
          "[train][ablation][trainer]") {
  TrainConfig c = tiny_ablation_run("mqar");
  c.data.eval_len = 0;
  const json a = json::parse(run_training(c)).at("lambda_ablation");
  CHECK(a.at("type_mean").at("eval_len_accuracy").is_null());
  CHECK(a.at("type_mean").at("accuracy").is_number());
}

TEST_CASE("validate: --ablate-lambda needs --model task and a task with position types",
          "[train][ablation][errors]") {
  TrainConfig c = tiny_ablation_run("mqar");
  c.model.model = "mamba2";
  CHECK_THROWS_WITH(validate(c), ContainsSubstring("--ablate-lambda: expected --model task") &&
                                     ContainsSubstring("got --model mamba2"));
  CHECK_THROWS_AS(run_training(c), std::invalid_argument);
  c.model.model = "task";
  c.data.task = "lm";
  CHECK_THROWS_WITH(validate(c), ContainsSubstring("--ablate-lambda: expected --model task with --task mqar or "
                                                   "selective_copy"));
  c.ablate_lambda = false;
  c.model.model = "mamba2";
  c.data.task = "mqar";
  CHECK_NOTHROW(validate(c));  // the flag, not the model, is what is refused
}
