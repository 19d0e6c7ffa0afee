// train/model: make_model builds the task model and the Mamba-2 LM behind one interface; the
// shapes of what the loop and the diagnostics read after forward and backward, the checkpoint's
// architecture strings, determinism per seed, and the flags it refuses.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/train/model.hpp>

#include "../support/model_configs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <string>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;

namespace {
// The tiny model of each kind, the task model with a decay of its own (gla).
ModelConfig small_model(const std::string& model) {
  ModelConfig c = loglinear::test::tiny_model_config(model);
  if (model == "task") c.decay = "gla";
  return c;
}
}  // namespace

TEST_CASE("make_model: forward, backward and the cached g and lambda have the documented shapes",
          "[train][model][property]") {
  const std::string name = GENERATE(as<std::string>{}, "task", "mamba2");
  const std::string mixer = GENERATE(as<std::string>{}, "mamba2", "gdn");
  CAPTURE(name, mixer);
  const Index B = 3, T = 16, vocab = 16, levels = num_levels(T);
  ModelConfig cfg = small_model(name);
  cfg.mixer = mixer;
  auto model = make_model(cfg, vocab, levels, 5);
  CHECK(model->num_layers() == cfg.layers);
  CHECK(model->levels() == levels);
  const tasks::Batch batch = tasks::make_mqar({T, 2, vocab}, B, 7).data;
  Index correct = -1;
  model->zero_grad();
  const double loss = model->forward(batch, &correct);
  CHECK(std::isfinite(loss));
  CHECK(loss > 0);  // a cross-entropy of a model that has not been trained
  CHECK(correct >= 0);
  CHECK(correct <= batch.scored());
  for (Index i = 0; i < model->num_layers(); ++i) {
    CAPTURE(i);
    CHECK(model->last_decay(i).rows() == B * T);
    CHECK(model->last_decay(i).cols() == cfg.heads);
    CHECK((model->last_decay(i).array() <= 0).all());  // a log-decay
    CHECK(model->last_lambda(i).rows() == B * T);
    CHECK(model->last_lambda(i).cols() == cfg.heads * levels);
  }
  CHECK_THROWS_WITH(model->last_decay(cfg.layers), ContainsSubstring("layer: "));
  CHECK_THROWS_WITH(model->last_lambda(-1), ContainsSubstring("layer: "));
  model->backward();
  bool any_nonzero = false;
  for (auto* p : model->params()) {
    CAPTURE(p->name);
    CHECK(p->grad.rows() == p->value.rows());
    CHECK(p->grad.cols() == p->value.cols());
    CHECK(p->grad.allFinite());
    any_nonzero = any_nonzero || !p->grad.isZero(0);
  }
  CHECK(any_nonzero);
  model->zero_grad();
  for (auto* p : model->params()) CHECK(p->grad.isZero(0));
}

TEST_CASE("make_model: architecture strings name the model, lambda and decay; the seed fixes the init",
          "[train][model][property]") {
  ModelConfig task = small_model("task");
  task.lambda = "constant";
  CHECK(make_model(task, 16, 4, 1)->architecture() == "task_model lambda=constant decay=gla");
  ModelConfig lm = small_model("mamba2");
  lm.lambda = "mlp_softmax";
  CHECK(make_model(lm, 16, 4, 1)->architecture() == "mamba2_lm lambda=mlp_softmax");
  ModelConfig task_gdn = task, lm_gdn = lm;
  task_gdn.mixer = lm_gdn.mixer = "gdn";
  CHECK(make_model(task_gdn, 16, 4, 1)->architecture() == "task_model lambda=constant decay=gla mixer=gdn");
  CHECK(make_model(lm_gdn, 16, 4, 1)->architecture() == "gdn_lm lambda=mlp_softmax");
  for (const ModelConfig& c : {task, lm, task_gdn, lm_gdn}) {
    CAPTURE(c.model, c.mixer);
    auto a = make_model(c, 16, 4, 9), b = make_model(c, 16, 4, 9), other = make_model(c, 16, 4, 10);
    const auto pa = a->params(), pb = b->params(), po = other->params();
    REQUIRE(pa.size() == pb.size());
    REQUIRE(pa.size() == po.size());
    bool all_same_as_other = true;
    for (size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i]->name);
      CHECK(pa[i]->name == pb[i]->name);
      CHECK(pa[i]->value == pb[i]->value);  // bit for bit
      all_same_as_other = all_same_as_other && pa[i]->value == po[i]->value;
    }
    CHECK_FALSE(all_same_as_other);
  }
}

TEST_CASE("make_model: unknown --model, --decay other than mamba2 with --model mamba2, and bad keys are refused",
          "[train][model][errors]") {
  ModelConfig c = small_model("task");
  c.model = "gpt";
  CHECK_THROWS_WITH(make_model(c, 16, 4, 1), ContainsSubstring("--model: expected one of task, mamba2, got \"gpt\""));
  c = small_model("mamba2");
  c.decay = "gla";
  CHECK_THROWS_WITH(make_model(c, 16, 4, 1),
                    ContainsSubstring("--decay: --model mamba2 has the Mamba-2 layer's own decay") &&
                        ContainsSubstring("got \"gla\""));
  for (const std::string model : {"task", "mamba2"}) {
    CAPTURE(model);
    c = small_model(model);
    c.form = "fast";
    CHECK_THROWS_WITH(make_model(c, 16, 4, 1), ContainsSubstring("--form: "));
  }
}

TEST_CASE("make_model: --decay-p sets simple_decay's initial rate: exp(g) = p at u = 0", "[train][model]") {
  const double p = GENERATE(0.8, 0.9, 0.95, 0.99);
  CAPTURE(p);
  ModelConfig cfg = small_model("task");
  cfg.decay = "simple_decay";
  cfg.decay_p = p;
  auto model = make_model(cfg, 16, num_levels(16), 3);
  int found = 0;
  for (Param<float>* param : model->params()) {
    const std::string& name = param->name;
    if (name.size() < 5 || name.compare(name.size() - 5, 5, "Delta") != 0) continue;
    ++found;
    // Delta = logit(p), so sigmoid(0 + Delta) = p, float rounding of the logit.
    for (Index i = 0; i < param->value.size(); ++i)
      CHECK(std::abs(1 / (1 + std::exp(-double(param->value(i)))) - p) <= 1e-6 * p);
  }
  CHECK(found == cfg.layers);
}
