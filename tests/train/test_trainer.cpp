// train/trainer: validate() refuses every bad setting naming its flag (the hostile inputs of issue
// 11 included: a pair count that cannot fit the length, totals beyond 2^31) and accepts the
// defaults and the --quick preset; a tiny run_training returns its JSON result (and writes it
// with --json), and a chunk size far beyond the length is clamped rather than allocated.
#include <loglinear/train/trainer.hpp>

#include "../support/temp_dir.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using loglinear::test::TempDir;

namespace {
// The settings of the smallest run that still evaluates every step.
TrainConfig tiny_run() {
  TrainConfig c;
  c.data.task = "mqar";
  c.data.length = 8;
  c.data.pairs = 1;
  c.data.train_size = 8;
  c.data.val_size = 8;
  c.data.batch = 4;
  c.model.d_model = 8;
  c.model.layers = 1;
  c.model.mlp_hidden = 4;
  c.steps = 3;
  c.eval_every = 1;
  c.early_stop = 100;  // stop early only at a perfect score, so that every step runs
  c.progress = false;
  return c;
}
Index count(const std::string& text, const std::string& what) {
  Index n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}
}  // namespace

TEST_CASE("validate: refuses each bad setting with the flag, what it expects and what it got",
          "[train][trainer][errors]") {
  using Edit = std::function<void(TrainConfig&)>;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::pair<Edit, std::string>> cases = {
      {[](TrainConfig& c) { c.model.chunk = 48; }, "--chunk: expected a power of two, got 48"},
      {[](TrainConfig& c) { c.model.lambda = "softmax"; }, "--lambda: expected one of"},
      {[](TrainConfig& c) { c.model.decay = "gru"; }, "--decay: expected one of"},
      {[](TrainConfig& c) { c.model.decay = "tnl", c.model.heads = 1; }, "--decay tnl: expected --heads >= 2 and --layers >= 2"},
      {[](TrainConfig& c) { c.model.decay = "tnl", c.model.heads = 2, c.model.layers = 1; }, "--decay tnl: expected"},
      {[](TrainConfig& c) { c.model.model = "gpt"; }, "--model: expected one of task, mamba2, got \"gpt\""},
      {[](TrainConfig& c) { c.model.mixer = "delta"; }, "--mixer: expected one of mamba2, gdn, got \"delta\""},
      {[](TrainConfig& c) { c.model.mixer = "GDN"; }, "--mixer: expected one of mamba2, gdn, got \"GDN\""},
      {[](TrainConfig& c) { c.model.model = "mamba2", c.model.decay = "gla"; }, "--decay: expected mamba2 with --model mamba2"},
      {[](TrainConfig& c) { c.model.model = "mamba2", c.model.heads = 3; }, "--heads: expected a divisor of --expand * --d-model = 128"},
      {[](TrainConfig& c) { c.model.form = "fast"; }, "--form: expected one of naive, recurrent, chunked"},
      {[](TrainConfig& c) { c.model.matmul = "bf16"; }, "--matmul: expected one of fp32, tf32, got \"bf16\""},
      {[](TrainConfig& c) { c.model.matmul = "tf32"; }, "--matmul tf32: the CPU computes in float32 only"},
      {[](TrainConfig& c) { c.model.attention = "fp16"; }, "--attention: expected one of fp32, bf16, got \"fp16\""},
      {[](TrainConfig& c) { c.model.attention = "bf16"; }, "--attention bf16: the CPU's operator computes in"},
      {[](TrainConfig& c) { c.model.decay = "simple_decay", c.model.decay_p = 1; }, "--decay-p: expected an initial decay rate in (0, 1), got 1"},
      {[nan](TrainConfig& c) { c.model.decay = "simple_decay", c.model.decay_p = nan; }, "--decay-p: expected an initial decay rate in (0, 1)"},
      {[](TrainConfig& c) { c.model.decay_p = 0.8; }, "--decay-p: expected --decay simple_decay (the only decay with an initial rate), got --decay mamba2"},
      {[](TrainConfig& c) { c.data.task = "copy"; }, "--task: expected one of mqar, selective_copy, lm"},
      {[](TrainConfig& c) { c.model.d_model = 0; }, "--d-model: expected >= 1"},
      {[](TrainConfig& c) { c.model.d_model = 10, c.model.heads = 4; }, "--d-model: expected a multiple of --heads 4"},
      {[](TrainConfig& c) { c.data.batch = 0; }, "--batch: expected >= 1"},
      {[](TrainConfig& c) { c.steps = 0; }, "--steps: expected >= 1"},
      {[](TrainConfig& c) { c.data.eval_len = -1; }, "--eval-len: expected >= 0"},
      {[](TrainConfig& c) { c.warmup = -5; }, "--warmup: expected >= 0"},
      {[](TrainConfig& c) { c.weight_decay = -0.1; }, "--weight-decay: expected >= 0"},
      {[](TrainConfig& c) { c.lr = 0; }, "--lr: expected a number > 0"},
      {[nan](TrainConfig& c) { c.lr = nan; }, "--lr: expected a number > 0"},
      {[](TrainConfig& c) { c.clip = -1; }, "--clip: expected a number > 0"},
      {[](TrainConfig& c) { c.early_stop = 100.5; }, "--early-stop: expected a percentage in [0, 100]"},
      {[nan](TrainConfig& c) { c.early_stop = nan; }, "--early-stop: expected a percentage in [0, 100]"},
      // issue 11: `--quick --pairs 1000 --length 16` never returned; now refused before generating.
      {[](TrainConfig& c) { apply_quick_preset(c), c.data.pairs = 1000, c.data.length = 16; }, "--pairs/--length: "},
      {[](TrainConfig& c) { c.data.pairs = 8, c.data.eval_len = 16; }, "--pairs/--eval-len: "},
      {[](TrainConfig& c) { c.data.task = "selective_copy", c.data.copy_tokens = 100; }, "--copy-tokens/--length: "},
      // Totals beyond 2^31 elements, refused before anything is allocated.
      {[](TrainConfig& c) { c.model.d_model = 1 << 16; }, "parameters (--d-model"},
      {[](TrainConfig& c) { c.data.batch = 1 << 16; }, "activations per step (--batch x --length x width): expected at most 2^31"},
      {[](TrainConfig& c) { c.data.task = "lm", c.data.train_size = 1 << 25; }, "training tokens (--train-size x --length): expected at most 2^31"},
      {[](TrainConfig& c) { c.data.task = "lm", c.data.val_size = 1 << 25; }, "validation tokens (--val-size x max(--length, --eval-len))"},
  };
  for (const auto& [edit, expected] : cases) {
    CAPTURE(expected);
    TrainConfig c;
    edit(c);
    CHECK_THROWS_WITH(validate(c), ContainsSubstring(expected));
    CHECK_THROWS_AS(validate(c), std::invalid_argument);
  }
}

TEST_CASE("validate: accepts the defaults of both models and the --quick preset", "[train][trainer][property]") {
  TrainConfig c;
  CHECK_NOTHROW(validate(c));
  CHECK(c.model.mixer == "mamba2");  // the default
  c.model.mixer = "gdn";
  CHECK_NOTHROW(validate(c));
  c.model.model = "mamba2";
  CHECK_NOTHROW(validate(c));
  c.model.mixer = "mamba2";
  CHECK_NOTHROW(validate(c));
  TrainConfig quick;
  apply_quick_preset(quick);
  CHECK_NOTHROW(validate(quick));
  // The preset trainer.hpp documents: T = 64, 8 pairs, 400 steps, 2000 + 256 sequences, eval every 100.
  CHECK(quick.data.length == 64);
  CHECK(quick.data.pairs == 8);
  CHECK(quick.steps == 400);
  CHECK(quick.data.train_size == 2000);
  CHECK(quick.data.val_size == 256);
  CHECK(quick.eval_every == 100);
  // A power-of-two chunk far beyond the length is valid: run_training clamps it (next case).
  c = TrainConfig{};
  c.model.chunk = Index(1) << 40;
  CHECK_NOTHROW(validate(c));
}

TEST_CASE("run_training: a tiny MQAR run returns (and writes) its JSON result with 3 steps and 3 evaluations",
          "[train][trainer]") {
  const TempDir dir("loglinear_test_trainer_");
  TrainConfig c = tiny_run();
  c.json_path = dir.file("result.json");
  const std::string text = run_training(c);
  // nlohmann_json is private to the library, so the text is searched: dump(2) writes "key": value.
  CHECK_THAT(text, ContainsSubstring("\"steps_run\": 3"));
  CHECK_THAT(text, ContainsSubstring("\"train_time_s\": "));
  CHECK_THAT(text, ContainsSubstring("\"device\": \"cpu\""));
  CHECK_THAT(text, ContainsSubstring("\"task\": \"mqar\""));
  CHECK_THAT(text, ContainsSubstring("\"stopped_early\": false"));
  CHECK(count(text, "\"val_accuracy\"") == 3);  // one history row per step (eval_every 1)
  std::ifstream f(c.json_path);
  const std::string written((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(written == text + "\n");
}

TEST_CASE("run_training: --chunk 2^40 is clamped to the length, not allocated (issue 11 segfault)",
          "[train][trainer][errors]") {
  TrainConfig c = tiny_run();
  c.steps = 1;
  c.model.chunk = Index(1) << 40;
  const std::string text = run_training(c);
  CHECK_THAT(text, ContainsSubstring("\"steps_run\": 1"));
  CHECK_THAT(text, ContainsSubstring("\"chunk\": 1099511627776"));  // the recorded setting is the one asked for
}

TEST_CASE("run_training: --mixer is recorded in the JSON settings, for both models", "[train][trainer][gdn]") {
  for (const std::string model : {"task", "mamba2"})
    for (const std::string mixer : {"mamba2", "gdn"}) {
      CAPTURE(model, mixer);
      TrainConfig c = tiny_run();
      c.steps = 2;
      c.model.model = model;
      c.model.mixer = mixer;
      const std::string text = run_training(c);
      CHECK_THAT(text, ContainsSubstring("\"mixer\": \"" + mixer + "\""));
      CHECK_THAT(text, ContainsSubstring("\"steps_run\": 2"));
    }
}
