// tasks/selective_copy: the layout of SPEC.md §9.2 position by position and the argument errors,
// hostile ones included.
#include <loglinear/tasks/selective_copy.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <limits>
#include <set>

using namespace loglinear;
using namespace loglinear::tasks;
using Catch::Matchers::ContainsSubstring;

namespace {
constexpr Index kInt64Max = std::numeric_limits<Index>::max();
}  // namespace

TEST_CASE("selective copy: data among noise, a separator, blanks, targets in order",
          "[tasks][selective_copy]") {
  using Vocab = SelectiveCopyVocab;
  const Index T = GENERATE(33, 256), n = 16;
  CAPTURE(T);
  const Dataset ds = make_selective_copy({T, n}, 30, 3);
  for (Index b = 0; b < ds.size(); ++b) {
    std::vector<int> data_in_order;
    for (Index p = 0; p < T - n - 1; ++p) {
      const int tok = ds.data.tokens(b, p);
      if (tok >= Vocab::data_first && tok <= Vocab::data_last) {
        data_in_order.push_back(tok);
      } else {
        REQUIRE(tok >= Vocab::noise_first);
        REQUIRE(tok <= Vocab::noise_last);
      }
      REQUIRE(ds.data.targets(b, p) == kIgnore);
    }
    REQUIRE(Index(data_in_order.size()) == n);
    REQUIRE(std::set<int>(data_in_order.begin(), data_in_order.end()).size() == size_t(n));
    REQUIRE(ds.data.tokens(b, T - n - 1) == Vocab::separator);
    for (Index i = 0; i < n; ++i) {
      REQUIRE(ds.data.tokens(b, T - n + i) == Vocab::blank);
      REQUIRE(ds.data.targets(b, T - n - 1 + i) == data_in_order[i]);
    }
    REQUIRE(ds.data.targets(b, T - 1) == kIgnore);
  }
  CHECK_THROWS_WITH(make_selective_copy({32, 16}, 1, 0), ContainsSubstring("length: expected >= 2 * tokens + 1 = 33"));
  CHECK_THROWS_WITH(make_selective_copy({300, 64}, 1, 0), ContainsSubstring("tokens: expected 1..63"));
}

TEST_CASE("selective copy: tokens that cannot fit the length are refused with the numbers",
          "[tasks][selective_copy][errors]") {
  CHECK_THROWS_WITH(make_selective_copy({32, 16}, 1, 0), ContainsSubstring("length: expected >= 2 * tokens + 1 = 33"));
  CHECK_THROWS_WITH(make_selective_copy({kInt64Max, 64}, 1, 0), ContainsSubstring("tokens: expected 1..63"));
  CHECK_THROWS_WITH(make_selective_copy({16, -1}, 1, 0), ContainsSubstring("tokens: expected 1..63"));
  CHECK_THROWS_WITH(make_selective_copy({-16, 3}, 1, 0), ContainsSubstring("length: expected >= 2 * tokens + 1 = 7"));
}
