// tasks/mqar: the layout of SPEC.md §9.1 position by position, determinism per seed, and the
// argument errors, hostile ones included (settings that once hung or allocated without bound).
#include <loglinear/tasks/mqar.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <limits>
#include <map>
#include <set>

using namespace loglinear;
using namespace loglinear::tasks;
using Catch::Matchers::ContainsSubstring;

namespace {
constexpr Index kInt64Max = std::numeric_limits<Index>::max();
}  // namespace

TEST_CASE("mqar: pairs first, every key queried once at the end, targets are the paired values",
          "[tasks][mqar]") {
  const auto [T, n] = GENERATE(table<Index, Index>({{128, 8}, {128, 32}, {256, 16}, {16, 4}}));
  CAPTURE(T, n);
  const Dataset ds = make_mqar({T, n, 128}, 50, 7);
  REQUIRE(ds.size() == 50);
  REQUIRE(ds.length() == T);
  for (Index b = 0; b < ds.size(); ++b) {
    std::map<int, int> value_of;
    std::set<int> values;
    for (Index i = 0; i < n; ++i) {
      const int key = ds.data.tokens(b, 2 * i), value = ds.data.tokens(b, 2 * i + 1);
      REQUIRE(key >= 1);
      REQUIRE(key <= 63);
      REQUIRE(value >= 64);
      REQUIRE(value <= 127);
      REQUIRE(value_of.emplace(key, value).second);  // keys distinct
      REQUIRE(values.insert(value).second);          // values distinct
    }
    std::set<int> queried;
    Index scored = 0;
    for (Index p = 0; p < T; ++p) {
      const int tok = ds.data.tokens(b, p), target = ds.data.targets(b, p);
      REQUIRE(tok >= 1);
      REQUIRE(tok <= 127);
      const bool is_query = p >= T - 2 * n && (p - (T - 2 * n)) % 2 == 0;
      if (is_query) {
        REQUIRE(value_of.count(tok) == 1);
        REQUIRE(target == value_of[tok]);
        REQUIRE(queried.insert(tok).second);
        ++scored;
      } else {
        REQUIRE(target == kIgnore);
      }
    }
    REQUIRE(scored == n);
  }
  REQUIRE(ds.data.scored() == 50 * n);
}

TEST_CASE("mqar: the same seed gives the same data, another seed other data", "[tasks][mqar]") {
  const auto a = make_mqar({64, 8, 128}, 20, 1), b = make_mqar({64, 8, 128}, 20, 1);
  const auto c = make_mqar({64, 8, 128}, 20, 2);
  CHECK(a.data.tokens.values() == b.data.tokens.values());
  CHECK(a.data.targets.values() == b.data.targets.values());
  CHECK(a.data.tokens.values() != c.data.tokens.values());
}

TEST_CASE("mqar: invalid settings are rejected with the argument's name", "[tasks][errors]") {
  CHECK_THROWS_WITH(make_mqar({30, 8, 128}, 1, 0), ContainsSubstring("pairs: expected at most 7 pairs for length 30"));
  CHECK_THROWS_WITH(make_mqar({512, 64, 128}, 1, 0),
                    ContainsSubstring("pairs: expected at most 63 pairs for length 512 and vocab 128"));
  CHECK_THROWS_WITH(make_mqar({64, 0, 128}, 1, 0), ContainsSubstring("pairs:"));
  CHECK_THROWS_WITH(make_mqar({64, 8, 128}, 0, 0), ContainsSubstring("count: expected >= 1"));
}

TEST_CASE("mqar: pairs that cannot fit the length or the vocabulary are refused with the numbers",
          "[tasks][mqar][errors]") {
  // loglinear-train --pairs 1000 --length 16.
  CHECK_THROWS_WITH(make_mqar({16, 1000, 128}, 2000, 0),
                    ContainsSubstring("pairs: expected at most 4 pairs for length 16 and vocab 128 "
                                      "(4 * pairs <= length"));
  CHECK_THROWS_WITH(make_mqar({16, 5, 128}, 1, 0), ContainsSubstring("pairs: expected at most 4 pairs"));
  CHECK_NOTHROW(make_mqar({16, 4, 128}, 1, 0));
  CHECK_THROWS_WITH(make_mqar({1024, 8, 16}, 1, 0),
                    ContainsSubstring("pairs <= vocab/2 - 1 = 7 distinct keys), got 8"));
  CHECK_THROWS_WITH(make_mqar({3, 1, 128}, 1, 0), ContainsSubstring("length: expected >= 4"));
  CHECK_THROWS_WITH(make_mqar({kInt64Max, kInt64Max, 128}, 1, 0), ContainsSubstring("pairs: expected at most 63"));
}

TEST_CASE("mqar: a vocabulary outside 4..2^16 is refused before the key pool is sized from it",
          "[tasks][mqar][errors]") {
  // vocab 2^62 - 1 used to size the key pool after a truncation to int32 (std::length_error).
  const Index vocab = GENERATE(Index(3), Index(-1), Index(65537), (Index(1) << 62) - 1, kInt64Max);
  CAPTURE(vocab);
  CHECK_THROWS_WITH(make_mqar({16640, 105, vocab}, 1, 0), ContainsSubstring("vocab: expected 4 <= vocab <= 65536"));
}

TEST_CASE("mqar: the work of count sequences with a large vocabulary is capped", "[tasks][mqar][errors]") {
  // Each sequence shuffles the vocabulary: 2^20 sequences of 16 tokens with vocab 2^16 would be
  // 2^36 swaps, bounded but hours long.
  CHECK_THROWS_WITH(check_mqar({16, 4, 65536}, Index(1) << 20),
                    ContainsSubstring("count: expected count * (length + vocab) <= 2^30"));
  CHECK_NOTHROW(check_mqar({16, 4, 65536}, 1 << 10));
}
