// tasks/char_lm: windows predict the next byte, the split is fixed, and window lengths, counts and
// corpus paths are checked before any division, allocation or endless read.
#include <loglinear/tasks/char_lm.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <limits>

using namespace loglinear;
using namespace loglinear::tasks;
using Catch::Matchers::ContainsSubstring;

namespace {
constexpr Index kInt64Max = std::numeric_limits<Index>::max();
}  // namespace

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
