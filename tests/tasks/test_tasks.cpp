// Task generators (reference/loglinear/tasks/): the layouts of SPEC.md §9 checked position by
// position, determinism per seed, and argument errors, hostile ones included (the settings that
// broke the generators, and a replay of every committed libFuzzer input of tests/fuzz/).
#include "fuzz/tasks_harness.hpp"

#include <loglinear/tasks/char_lm.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <functional>
#include <map>
#include <set>

using namespace loglinear;
using namespace loglinear::tasks;
using Catch::Matchers::ContainsSubstring;

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

TEST_CASE("char lm: windows predict the next byte; the split is fixed", "[tasks][lm]") {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += char('a' + (i * 7) % 26);
  const CharCorpus corpus(text, 0.1);
  CHECK(corpus.train_size() == 900);
  CHECK(corpus.valid_size() == 100);
  const Batch b = corpus.sample_train(8, 32, 5);
  for (Index i = 0; i < 8; ++i)
    for (Index p = 0; p + 1 < 32; ++p) REQUIRE(b.targets(i, p) == b.tokens(i, p + 1));
  const Batch v = corpus.valid_windows(20, 100);
  CHECK(v.tokens.dim(0) == 4);  // (100 - 1) / 20 whole windows
  CHECK(char(v.tokens(0, 0)) == text[900]);
  CHECK(char(v.targets(3, 19)) == text[900 + 80]);
  CHECK(std::abs(bits_per_byte(std::log(2.0)) - 1.0) < 1e-15);
  CHECK_THROWS_WITH(CharCorpus::from_file("/nonexistent/kjv.txt"), ContainsSubstring("kjv_corpus"));
  CHECK_THROWS_WITH(corpus.sample_train(1, 900, 0), ContainsSubstring("length: expected 1 <= length < 900"));
  CHECK_THROWS_AS(CharCorpus(text, 1.5), std::invalid_argument);
}

// --- Hostile settings (issue 11). Each case below once crashed, hung or allocated without bound;
// tests/fuzz/README.md lists the fuzz inputs that found them.

namespace {
constexpr Index kInt64Max = std::numeric_limits<Index>::max();
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

TEST_CASE("mqar: the work of count sequences with a large vocabulary is capped", "[tasks][mqar][errors]") {
  // Each sequence shuffles the vocabulary: 2^20 sequences of 16 tokens with vocab 2^16 would be
  // 2^36 swaps, bounded but hours long.
  CHECK_THROWS_WITH(check_mqar({16, 4, 65536}, Index(1) << 20),
                    ContainsSubstring("count: expected count * (length + vocab) <= 2^30"));
  CHECK_NOTHROW(check_mqar({16, 4, 65536}, 1 << 10));
}

TEST_CASE("selective copy: tokens that cannot fit the length are refused with the numbers",
          "[tasks][selective_copy][errors]") {
  CHECK_THROWS_WITH(make_selective_copy({32, 16}, 1, 0), ContainsSubstring("length: expected >= 2 * tokens + 1 = 33"));
  CHECK_THROWS_WITH(make_selective_copy({kInt64Max, 64}, 1, 0), ContainsSubstring("tokens: expected 1..63"));
  CHECK_THROWS_WITH(make_selective_copy({16, -1}, 1, 0), ContainsSubstring("tokens: expected 1..63"));
  CHECK_THROWS_WITH(make_selective_copy({-16, 3}, 1, 0), ContainsSubstring("length: expected >= 2 * tokens + 1 = 7"));
}

TEST_CASE("char lm: window lengths and counts are checked before any division or allocation",
          "[tasks][lm][errors]") {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += char('a' + (i * 7) % 26);
  const CharCorpus corpus(text, 0.1);
  // valid_windows(0) divided by zero (SIGFPE) before its check.
  CHECK_THROWS_WITH(corpus.valid_windows(0, 4), ContainsSubstring("length: expected a window of 1..99"));
  CHECK_THROWS_WITH(corpus.valid_windows(100, 4), ContainsSubstring("length: expected a window of 1..99"));
  CHECK_THROWS_WITH(corpus.valid_windows(-3, 4), ContainsSubstring("length:"));
  CHECK_THROWS_WITH(corpus.valid_windows(10, 0), ContainsSubstring("max_windows: expected >= 1, got 0"));
  CHECK(corpus.valid_windows(99, kInt64Max).tokens.dim(0) == 1);
  // sample_train(count -5) asked std::vector for 2^64 - 5 entries (std::length_error).
  CHECK_THROWS_WITH(corpus.sample_train(-5, 8, 0), ContainsSubstring("count: expected >= 1, got -5"));
  CHECK_THROWS_WITH(corpus.sample_train(0, 8, 0), ContainsSubstring("count: expected >= 1, got 0"));
  // sample_train(length INT64_MAX) overflowed length + 1 (UB) in its check.
  CHECK_THROWS_WITH(corpus.sample_train(1, kInt64Max, 0), ContainsSubstring("length: expected 1 <= length < 900"));
  // A count whose windows cannot fit 2^28 tokens (it used to allocate them, for minutes).
  CHECK_THROWS_WITH(corpus.sample_train(Index(1) << 40, 8, 0),
                    ContainsSubstring("count: expected count * length <= 2^28"));
  const double fraction = GENERATE(0.0, 1.0, -0.5, std::numeric_limits<double>::quiet_NaN(),
                                   std::numeric_limits<double>::infinity());
  CAPTURE(fraction);
  CHECK_THROWS_WITH(CharCorpus(text, fraction), ContainsSubstring("valid_fraction: expected a value in (0, 1)"));
}

TEST_CASE("char lm: a corpus path that is not a regular file is refused instead of read forever",
          "[tasks][lm][errors]") {
  CHECK_THROWS_WITH(CharCorpus::from_file("/dev/zero"), ContainsSubstring("not a regular file"));
  CHECK_THROWS_WITH(CharCorpus::from_file("/"), ContainsSubstring("not a regular file"));
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
