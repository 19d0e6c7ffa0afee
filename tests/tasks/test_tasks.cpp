// Task generators (reference/loglinear/tasks/): the layouts of SPEC.md §9 checked position by
// position, determinism per seed, and argument errors.
#include <loglinear/tasks/char_lm.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
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
  CHECK_THROWS_WITH(make_mqar({30, 8, 128}, 1, 0), ContainsSubstring("length: expected >= 4 * pairs = 32"));
  CHECK_THROWS_WITH(make_mqar({512, 64, 128}, 1, 0), ContainsSubstring("pairs: expected 1 <= pairs <= vocab/2 - 1 = 63"));
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
