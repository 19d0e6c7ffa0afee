// tasks/task: the dataset size checks shared by every generator (check_dataset_size: overflow and
// the 2^28-token cap, before any allocation), and a replay of every committed libFuzzer input of
// tests/fuzz/ through the generators, so the gcc suite covers them without clang.
#include "fuzz/tasks_harness.hpp"

#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>
#include <loglinear/tasks/task.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <functional>
#include <limits>

using namespace loglinear;
using namespace loglinear::tasks;
using Catch::Matchers::ContainsSubstring;

namespace {
constexpr Index kInt64Max = std::numeric_limits<Index>::max();
}  // namespace

TEST_CASE("mqar and selective copy: sizes that overflow or exceed 2^28 tokens are refused before any allocation",
          "[tasks][errors]") {
  // count * length used to overflow int64 in the tensor's size (UB), or to allocate terabytes.
  const auto [length, count] = GENERATE(table<Index, Index>({{kInt64Max, 3},
                                                             {Index(1) << 32, 40000},
                                                             {Index(1) << 31, 40000},
                                                             {1024, (Index(1) << 18) + 1},
                                                             {Index(1) << 29, 1}}));
  CAPTURE(length, count);
  const auto named = [](const std::string& m) { return m.rfind("count:", 0) == 0 || m.rfind("length:", 0) == 0; };
  for (const auto& make : {std::function<void()>([&] { make_mqar({length, 1, 128}, count, 0); }),
                           std::function<void()>([&] { make_selective_copy({length, 3}, count, 0); })}) {
    try {
      make();
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CAPTURE(e.what());
      CHECK(named(e.what()));
      CHECK_THAT(e.what(), ContainsSubstring("2^28 = 268435456"));
    }
  }
  CHECK_THROWS_WITH(check_dataset_size(1 << 20, 1 << 9), ContainsSubstring("count: expected count * length <= 2^28"));
  CHECK_NOTHROW(check_dataset_size(1 << 19, 1 << 9));
  CHECK_THROWS_WITH(check_dataset_size(0, 16), ContainsSubstring("count: expected >= 1, got 0"));
  CHECK_THROWS_WITH(check_dataset_size(-5, 16), ContainsSubstring("count: expected >= 1, got -5"));
}

TEST_CASE("tasks: every committed fuzz input keeps the generators' contract", "[tasks][fuzz]") {
  const auto inputs = loglinear::fuzz::committed_inputs("tasks");
  CAPTURE(loglinear::fuzz::fuzz_dir().string());
  REQUIRE(inputs.size() >= 10);  // tests/fuzz/regressions/tasks/ and corpus/tasks/ are committed
  for (const auto& [path, bytes] : inputs) {
    CAPTURE(path);
    CHECK_NOTHROW(loglinear::fuzz::tasks_one_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }
}
