// train/data: the training batch of a step is a function of (seed, step) alone (so a resumed run
// sees the batches of an uninterrupted one), the validation sets have the sizes asked for, and
// bad settings are refused naming the flag.
#include <loglinear/tasks/selective_copy.hpp>
#include <loglinear/train/data.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;

namespace {
DataConfig small_config(const std::string& task) {
  DataConfig c;
  c.task = task;
  c.length = 16;
  c.pairs = 2;
  c.copy_tokens = 4;
  c.batch = 4;
  c.train_size = 50;
  c.val_size = 7;
  c.seed = 3;
  return c;
}
bool same(const tasks::Batch& a, const tasks::Batch& b) {
  return a.tokens.shape() == b.tokens.shape() && a.tokens.values() == b.tokens.values() &&
         a.targets.values() == b.targets.values();
}
}  // namespace

TEST_CASE("data: train_batch(step) depends on (seed, step) only and differs across steps and seeds",
          "[train][data][property]") {
  const std::string task = GENERATE(as<std::string>{}, "mqar", "selective_copy");
  CAPTURE(task);
  const DataConfig c = small_config(task);
  const TaskData a(c), b(c);
  std::vector<tasks::Batch> batches;
  for (long step : {0L, 1L, 2L, 7L, 1000L}) {
    CAPTURE(step);
    const tasks::Batch x = a.train_batch(step);
    CHECK(x.tokens.dim(0) == c.batch);
    CHECK(x.tokens.dim(1) == c.length);
    CHECK(x.targets.shape() == x.tokens.shape());
    CHECK(same(x, b.train_batch(step)));  // another instance, same settings
    CHECK(same(x, a.train_batch(step)));  // asked again, after other steps: no hidden state
    for (const auto& earlier : batches) CHECK_FALSE(same(x, earlier));
    batches.push_back(x);
  }
  DataConfig other = c;
  other.seed = 4;
  CHECK_FALSE(same(TaskData(other).train_batch(0), a.train_batch(0)));
}

TEST_CASE("data: val() has val_size sequences of the training length, long_val() of eval_len or none",
          "[train][data][property]") {
  const std::string task = GENERATE(as<std::string>{}, "mqar", "selective_copy");
  const Index eval_len = GENERATE(0, 40);
  CAPTURE(task, eval_len);
  DataConfig c = small_config(task);
  c.eval_len = eval_len;
  const TaskData d(c);
  CHECK(d.vocab() == (task == "mqar" ? 128 : tasks::SelectiveCopyVocab::size));
  CHECK(d.val().size() == c.val_size);
  CHECK(d.val().length() == c.length);
  if (eval_len == 0) {
    CHECK(d.long_val().size() == 0);
  } else {
    CHECK(d.long_val().size() == c.val_size);
    CHECK(d.long_val().length() == eval_len);
  }
  // Token ids lie in [0, vocab()).
  for (const auto* ds : {&d.val(), &d.long_val()})
    for (std::int32_t t : ds->data.tokens.values()) {
      CHECK(t >= 0);
      CHECK(t < d.vocab());
    }
}

TEST_CASE("data: unknown --task, batch 0, impossible pairs and a missing corpus are refused",
          "[train][data][errors]") {
  DataConfig c = small_config("mqar");
  c.task = "copy";
  CHECK_THROWS_WITH(TaskData(c), ContainsSubstring("--task: expected one of mqar, selective_copy, lm, got \"copy\""));
  c = small_config("mqar");
  c.batch = 0;
  CHECK_THROWS_WITH(TaskData(c), ContainsSubstring("--batch: expected >= 1, got 0"));
  c = small_config("mqar");
  c.pairs = 1000;  // 4 * pairs tokens cannot fit in length 16
  CHECK_THROWS_WITH(TaskData(c), ContainsSubstring("--length/--pairs: "));
  c = small_config("selective_copy");
  c.eval_len = 2;  // 4 data tokens cannot fit in 2
  CHECK_THROWS_WITH(TaskData(c), ContainsSubstring("--eval-len: "));
  c = small_config("lm");
  c.corpus = "/nonexistent/loglinear-test-corpus.txt";
  CHECK_THROWS_AS(TaskData(c), std::runtime_error);
  CHECK_THROWS_WITH(TaskData(c), ContainsSubstring("cannot read \"/nonexistent/loglinear-test-corpus.txt\""));
}
