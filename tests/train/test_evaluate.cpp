// train/evaluate: the loss and accuracy are means over the scored positions of the whole set,
// whatever the batch size (partial last batches and sequences with fewer scored positions
// included), checked against one forward over the whole set; batch 0 is refused.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/train/evaluate.hpp>

#include "../support/model_configs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <string>
#include <utility>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using loglinear::test::tiny_model_config;

TEST_CASE("evaluate: equals the mean over scored positions of the whole set for batch 1, 3 and 8",
          "[train][evaluate][property]") {
  const std::string name = GENERATE(as<std::string>{}, "task", "mamba2");
  CAPTURE(name);
  const Index N = 8, T = 16, vocab = 16;
  tasks::Dataset ds = tasks::make_mqar({T, 3, vocab}, N, 21);
  // Unscore some positions so that sequences weigh differently: a mean of batch means, or of
  // per-sequence means, would then differ from the mean over positions.
  // Each keeps at least one of its 3 scored positions (a batch of none has no mean).
  for (const auto& [b, drop] : {std::pair<Index, Index>{0, 1}, {5, 2}, {6, 2}}) {
    Index dropped = 0;
    for (Index t = 0; t < T && dropped < drop; ++t)
      if (ds.data.targets(b, t) != tasks::kIgnore) ds.data.targets(b, t) = tasks::kIgnore, ++dropped;
    REQUIRE(dropped == drop);
  }
  const Index scored = ds.data.scored();
  REQUIRE(scored == N * 3 - 5);  // MQAR scores each of the 3 queries once
  auto model = make_model(tiny_model_config(name), vocab, num_levels(T), 3);
  // The oracle: one forward over every sequence is the mean over all scored positions.
  Index correct = 0;
  const double whole = model->forward(ds.data, &correct);
  const double accuracy = 100.0 * double(correct) / double(scored);
  for (Index batch : {1, 3, 8}) {
    CAPTURE(batch);
    const Eval ev = evaluate(*model, ds, batch);
    // 1e-5 relative: float logits; the same positions summed in another grouping and order.
    CHECK(std::abs(ev.loss - whole) <= 1e-5 * whole);
    CHECK(ev.accuracy == accuracy);  // integer counts over the same positions
  }
}

TEST_CASE("evaluate: batch 0 is refused", "[train][evaluate][errors]") {
  const tasks::Dataset ds = tasks::make_mqar({8, 1, 16}, 2, 1);
  auto model = make_model(tiny_model_config("task"), 16, num_levels(8), 1);
  CHECK_THROWS_WITH(evaluate(*model, ds, 0), ContainsSubstring("batch: expected >= 1, got 0"));
  CHECK_THROWS_AS(evaluate(*model, ds, -3), std::invalid_argument);
}
