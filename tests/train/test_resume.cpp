// train/resume: save_run then load_run into a fresh model and optimiser restores the parameters,
// the AdamW moments and step count and the run's progress, so that the next step is the one the
// uninterrupted run takes; settings that would change the run are refused naming the setting
// (--mixer too, an older file without it counting as mamba2); a missing state file is an error
// naming its path.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/train/resume.hpp>

#include "../support/model_configs.hpp"
#include "../support/temp_dir.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using loglinear::test::TempDir;
namespace fs = std::filesystem;

namespace {
// The tiny task model with a decay that has a parameter, so decay tensors are saved too.
ModelConfig resume_model() {
  ModelConfig c = loglinear::test::tiny_model_config("task");
  c.decay = "simple_decay";
  return c;
}
constexpr Index kT = 16, kVocab = 16;
std::unique_ptr<Model> fresh_model(std::uint64_t seed) {
  return make_model(resume_model(), kVocab, num_levels(kT), seed);
}
void train_step(Model& m, Optimizer& opt, const tasks::Batch& batch) {
  m.zero_grad();
  m.forward(batch);
  m.backward();
  opt.step(1e-2);
}
// The settings JSON of a run, as the trainer writes it (a flat object).
std::string config(double lr, long steps, long warmup) {
  return "{\"model\": \"task\", \"task\": \"mqar\", \"lr\": " + std::to_string(lr) + ", \"steps\": " +
         std::to_string(steps) + ", \"warmup\": " + std::to_string(warmup) + ", \"threads\": 2}";
}
}  // namespace

TEST_CASE("resume: load_run restores parameters, moments, step and progress; the next step is identical",
          "[train][resume][property]") {
  const TempDir dir("loglinear_test_resume_");
  const std::string path = dir.file("run.bin");
  const tasks::Batch batch = tasks::make_mqar({kT, 2, kVocab}, 4, 3).data;
  auto a = fresh_model(1);
  HostOptimizer opt_a(*a, 0.1);
  for (int s = 0; s < 3; ++s) train_step(*a, opt_a, batch);
  RunState state;
  state.step = 3;
  state.best_accuracy = 12.5;
  state.wall_time_s = 4.25;
  state.train_time_s = 2.5;
  state.train_tokens = 192;
  state.first_train_loss = 2.75;
  state.history_json = R"([{"step":3,"val_accuracy":12.5}])";
  save_run(path, *a, opt_a, state, config(1e-3, 100, 0));
  CHECK(fs::exists(path));
  CHECK(fs::exists(path + ".json"));

  auto b = fresh_model(2);  // another init: everything must come from the files
  HostOptimizer opt_b(*b, 0.1);
  const RunState loaded = load_run(path, *b, opt_b, config(1e-3, 100, 0));
  CHECK(loaded.step == 3);
  CHECK(loaded.best_accuracy == 12.5);  // values exact in binary and in JSON's decimal
  CHECK(loaded.wall_time_s == 4.25);
  CHECK(loaded.train_time_s == 2.5);
  CHECK(loaded.train_tokens == 192);
  CHECK(loaded.first_train_loss == 2.75);
  CHECK(loaded.history_json == R"([{"step":3,"val_accuracy":12.5}])");
  CHECK(opt_b.steps() == 3);
  const auto pa = a->params(), pb = b->params();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i]->name);
    CHECK(pa[i]->value == pb[i]->value);  // bit for bit
    CHECK(opt_a.moments(0)[i] == opt_b.moments(0)[i]);
    CHECK(opt_a.moments(1)[i] == opt_b.moments(1)[i]);
  }
  // The step after the resume is the uninterrupted run's step (bias correction uses the count).
  train_step(*a, opt_a, batch);
  train_step(*b, opt_b, batch);
  for (size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i]->name);
    CHECK(pa[i]->value == pb[i]->value);
  }
}

TEST_CASE("resume: a different lr is refused naming it; steps may change only without warmup",
          "[train][resume][errors]") {
  const TempDir dir("loglinear_test_resume_");
  auto a = fresh_model(1);
  HostOptimizer opt(*a, 0.0);
  RunState state;
  state.step = 5;
  save_run(dir.file("plain.bin"), *a, opt, state, config(1e-3, 100, 0));
  save_run(dir.file("warm.bin"), *a, opt, state, config(1e-3, 100, 10));
  auto b = fresh_model(2);
  HostOptimizer opt_b(*b, 0.0);
  CHECK_THROWS_WITH(load_run(dir.file("plain.bin"), *b, opt_b, config(2e-3, 100, 0)),
                    ContainsSubstring("--resume: " + dir.file("plain.bin")) &&
                        ContainsSubstring("was written with lr = 0.001") && ContainsSubstring("this run has lr = 0.002"));
  CHECK_THROWS_WITH(load_run(dir.file("warm.bin"), *b, opt_b, config(1e-3, 200, 10)),
                    ContainsSubstring("--resume: ") && ContainsSubstring("steps = 100") &&
                        ContainsSubstring("--warmup"));
  CHECK(load_run(dir.file("plain.bin"), *b, opt_b, config(1e-3, 200, 0)).step == 5);
  CHECK(opt_b.steps() == 5);
}

TEST_CASE("resume: a missing state file is a std::runtime_error naming the path", "[train][resume][errors]") {
  const TempDir dir("loglinear_test_resume_");
  auto m = fresh_model(1);
  HostOptimizer opt(*m, 0.0);
  const std::string path = dir.file("never-written.bin");
  CHECK_THROWS_AS(load_run(path, *m, opt, config(1e-3, 100, 0)), std::runtime_error);
  CHECK_THROWS_WITH(load_run(path, *m, opt, config(1e-3, 100, 0)), ContainsSubstring(path + ".json"));
}

TEST_CASE("resume: a different --mixer is refused; a file without a mixer setting counts as mamba2",
          "[train][resume][gdn][errors]") {
  const TempDir dir("loglinear_test_resume_");
  auto a = fresh_model(1);
  HostOptimizer opt(*a, 0.0);
  RunState state;
  state.step = 2;
  // The settings as an older trainer wrote them (no "mixer"), and as this one does.
  const std::string old_cfg = config(1e-3, 100, 0);
  auto with_mixer = [&](const std::string& mixer) {
    return old_cfg.substr(0, old_cfg.size() - 1) + ", \"mixer\": \"" + mixer + "\"}";
  };
  save_run(dir.file("old.bin"), *a, opt, state, old_cfg);
  save_run(dir.file("m2.bin"), *a, opt, state, with_mixer("mamba2"));
  auto b = fresh_model(2);
  HostOptimizer opt_b(*b, 0.0);
  // An old file resumes as a mamba2 run, and is refused for a gdn run (before the weights are read).
  CHECK(load_run(dir.file("old.bin"), *b, opt_b, with_mixer("mamba2")).step == 2);
  CHECK_THROWS_WITH(load_run(dir.file("old.bin"), *b, opt_b, with_mixer("gdn")),
                    ContainsSubstring("--resume: ") && ContainsSubstring("mixer = \"mamba2\" (no mixer recorded") &&
                        ContainsSubstring("this run has mixer = \"gdn\"") && ContainsSubstring("same --mixer"));
  CHECK_THROWS_WITH(load_run(dir.file("m2.bin"), *b, opt_b, with_mixer("gdn")),
                    ContainsSubstring("was written with mixer = \"mamba2\", this run has mixer = \"gdn\""));
  CHECK(load_run(dir.file("m2.bin"), *b, opt_b, with_mixer("mamba2")).step == 2);
}
