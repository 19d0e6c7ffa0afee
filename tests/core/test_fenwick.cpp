// Fenwick levels (reference/loglinear/core/fenwick.hpp) against independent definitions:
// the recursive "strip the highest bit" rule of the official code and the bucket partition.
#include <loglinear/core/fenwick.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <limits>

#include <set>

using namespace loglinear;

namespace {
// Official get_level_index_weak, written from its description (SPEC.md §2): while t > 0, if s
// lies below 2^msb(t) the answer is msb(t)+1, otherwise subtract 2^msb(t) from both.
int level_by_stripping(Index t, Index s) {
  if (s == t) return 0;
  while (true) {
    int msb = 0;
    while ((Index{2} << msb) <= t) ++msb;
    if (s < (Index{1} << msb)) return msb + 1;
    t -= Index{1} << msb;
    s -= Index{1} << msb;
  }
}
}  // namespace

TEST_CASE("fenwick: num_levels matches ceil(log2 T) + 1 at and around powers of two", "[fenwick]") {
  CHECK(num_levels(1) == 1);
  CHECK(num_levels(2) == 2);
  CHECK(num_levels(3) == 3);
  CHECK(num_levels(4) == 3);
  CHECK(num_levels(5) == 4);
  CHECK(num_levels(8) == 4);
  CHECK(num_levels(1000) == 11);
  CHECK(num_levels(16384) == 15);
  CHECK(num_levels(16385) == 16);
  for (int p = 1; p < 40; ++p) {
    const Index T = Index{1} << p;
    CAPTURE(p);
    CHECK(num_levels(T) == p + 1);
    CHECK(num_levels(T + 1) == p + 2);
    CHECK(num_levels(T - 1) == (p == 1 ? 1 : p + 1));
  }
}

TEST_CASE("fenwick: level equals the recursive definition for every pair up to T = 257",
          "[fenwick][property]") {
  for (Index t = 0; t < 257; ++t)
    for (Index s = 0; s <= t; ++s) {
      CAPTURE(t, s);
      REQUIRE(level(t, s) == level_by_stripping(t, s));
    }
}

TEST_CASE("fenwick: the SPEC worked table for T = 8", "[fenwick]") {
  // Row t = 6 of SPEC.md §2: level 0 = {6}, level 2 = {4,5}, level 3 = {0..3}, level 1 empty.
  const int row6[] = {3, 3, 3, 3, 2, 2, 0};
  for (Index s = 0; s <= 6; ++s) CHECK(level(6, s) == row6[s]);
  CHECK(level(7, 6) == 1);
  CHECK(level(5, 4) == 1);
}

TEST_CASE("fenwick: buckets of every prefix are disjoint, cover it, are powers of two and at "
          "most L(T) in number, for T up to 4096",
          "[fenwick][property]") {
  for (Index T = 1; T <= 4096; ++T) {
    const Index t = T - 1;
    const auto bs = buckets(t);
    CAPTURE(t);
    REQUIRE(static_cast<int>(bs.size()) <= num_levels(T));
    std::vector<int> covered(static_cast<size_t>(T), 0);
    std::set<int> levels_seen;
    for (const auto& b : bs) {
      const Index size = b.end - b.begin;
      REQUIRE(size >= 1);
      REQUIRE((size & (size - 1)) == 0);
      REQUIRE(size == (b.level == 0 ? 1 : Index{1} << (b.level - 1)));
      REQUIRE(levels_seen.insert(b.level).second);
      REQUIRE(b.level < num_levels(T));
      for (Index s = b.begin; s < b.end; ++s) {
        ++covered[static_cast<size_t>(s)];
        REQUIRE(level(t, s) == b.level);  // a bucket is exactly the tokens of its level
      }
    }
    for (Index s = 0; s < T; ++s) REQUIRE(covered[static_cast<size_t>(s)] == 1);
  }
}

TEST_CASE("fenwick: the chunk property holds (one LUT per chunk, one level per chunk pair)",
          "[fenwick][property]") {
  const Index C = GENERATE(1, 2, 4, 8, 16);
  const int c = bit_width(static_cast<std::uint64_t>(C)) - 1;
  const auto lut = level_table(C);
  for (Index t = 0; t < 200; ++t)
    for (Index s = 0; s <= t; ++s) {
      const Index z = t / C, y = s / C, i = t % C, j = s % C;
      CAPTURE(C, t, s);
      if (z == y) {
        REQUIRE(level(t, s) == lut[i * C + j]);
      } else {
        REQUIRE(level(t, s) == c + bit_width(static_cast<std::uint64_t>(z ^ y)));
      }
    }
}

TEST_CASE("fenwick: invalid arguments throw with the argument's name", "[fenwick][errors]") {
  CHECK_THROWS_WITH(num_levels(0), "num_levels(T): expected T >= 1, got T = 0");
  CHECK_THROWS_WITH(level(3, 4), "level(t, s): expected 0 <= s <= t, got t = 3, s = 4");
  CHECK_THROWS_WITH(buckets(-1), "buckets(t): expected 0 <= t < 2^63 - 1, got t = -1");
  // Regression: the level-0 bucket's end t + 1 overflowed at t = 2^63 - 1 (found by Hypothesis).
  CHECK_THROWS_WITH(buckets(std::numeric_limits<Index>::max()),
                    "buckets(t): expected 0 <= t < 2^63 - 1, got t = 9223372036854775807");
  CHECK(buckets(std::numeric_limits<Index>::max() - 1).back().end <= std::numeric_limits<Index>::max());
  CHECK_THROWS_WITH(level_table(0), "level_table(C): expected C >= 1, got C = 0");
  // A C x C table that overflows Index, or cannot fit in memory, is refused before allocating.
  CHECK_THROWS_AS(level_table(Index(1) << 40), std::invalid_argument);
  CHECK_THROWS_AS(level_table(Index(1) << 20), std::invalid_argument);  // 4 TiB
}
