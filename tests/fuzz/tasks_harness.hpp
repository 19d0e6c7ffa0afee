// Fuzz harness of the task generators (reference/loglinear/tasks/): the input decodes into the
// settings of make_mqar, make_selective_copy, the char-LM corpus or a dataset's gather/range,
// including impossible and huge ones. Contract:
//  - check_mqar / check_selective_copy agree with the rules their headers document (an
//    independent oracle in 128-bit arithmetic below);
//  - a refused setting makes the generator throw the same message, before it allocates (the
//    libFuzzer run's -malloc_limit_mb turns a large allocation into a crash);
//  - an accepted setting within a small budget generates data with the documented layout;
//  - every error message begins with the argument's name.
// Used by fuzz_tasks.cpp (libFuzzer) and by tests/tasks/test_task.cpp (replay under gcc).
#pragma once

#include "fuzz_support.hpp"

#include <loglinear/tasks/char_lm.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace loglinear::fuzz {

/// Largest accepted request the harness generates (tokens, or tokens + vocabulary for MQAR):
/// keeps each input well under a millisecond; larger accepted ones are only validated.
inline constexpr std::int64_t kTaskBudget = std::int64_t(1) << 14;

/// The settings make_mqar accepts, from its header's rules, in arithmetic that cannot overflow.
inline bool mqar_documented_ok(const tasks::MqarOptions& o, std::int64_t count) {
  using i128 = __int128;
  return o.vocab >= 4 && o.vocab <= tasks::kMaxMqarVocab && o.pairs >= 1 && o.length >= 4 &&
         i128(4) * o.pairs <= o.length && o.pairs <= o.vocab / 2 - 1 && count >= 1 &&
         o.length <= tasks::kMaxDatasetTokens && i128(count) * o.length <= tasks::kMaxDatasetTokens &&
         i128(count) * (i128(o.length) + o.vocab) <= tasks::kMaxMqarWork;
}

/// The settings make_selective_copy accepts, from its header's rules.
inline bool selective_copy_documented_ok(const tasks::SelectiveCopyOptions& o, std::int64_t count) {
  using i128 = __int128;
  return o.tokens >= 1 && o.tokens <= 63 && i128(o.length) >= i128(2) * o.tokens + 1 && count >= 1 &&
         o.length <= tasks::kMaxDatasetTokens && i128(count) * o.length <= tasks::kMaxDatasetTokens;
}

/// Calls `generate` for a setting the validator refused: it must throw exactly `expected`.
template <class F>
void expect_same_refusal(F&& generate, const std::string& expected) {
  std::string got;
  if (returns_or_refuses(generate, {"vocab:", "pairs:", "length:", "tokens:", "count:"}, &got)) {
    violation("the generator accepted a setting its check refused (\"" + expected + "\")");
  }
  if (got != expected) violation("the generator refused with \"" + got + "\", its check with \"" + expected + "\"");
}

inline void fuzz_mqar(FuzzInput& in) {
  tasks::MqarOptions o;
  o.length = in.index();
  o.pairs = in.index();
  o.vocab = in.index();
  const std::int64_t count = in.index();
  const std::uint64_t seed = in.u64();
  std::string refusal;
  const bool ok = returns_or_refuses([&] { tasks::check_mqar(o, count); }, {"vocab:", "pairs:", "length:", "count:"},
                                     &refusal);
  if (ok != mqar_documented_ok(o, count)) {
    violation("check_mqar " + std::string(ok ? "accepted" : "refused (" + refusal + ")") + " length " +
              std::to_string(o.length) + " pairs " + std::to_string(o.pairs) + " vocab " + std::to_string(o.vocab) +
              " count " + std::to_string(count) + ", against its documented rules");
  }
  if (!ok) return expect_same_refusal([&] { tasks::make_mqar(o, count, seed); }, refusal);
  if (count * (o.length + o.vocab) > kTaskBudget) return;
  const tasks::Dataset ds = tasks::make_mqar(o, count, seed);
  if (ds.size() != count || ds.length() != o.length) violation("make_mqar: wrong dataset shape");
  const std::int64_t T = o.length, n = o.pairs, half = o.vocab / 2;
  for (std::int64_t b = 0; b < count; ++b) {
    std::set<int> keys, values;
    for (std::int64_t i = 0; i < n; ++i) {
      const int k = ds.data.tokens(b, 2 * i), v = ds.data.tokens(b, 2 * i + 1);
      if (k < 1 || k > half - 1 || v < half || v > o.vocab - 1) violation("make_mqar: key or value out of range");
      if (!keys.insert(k).second || !values.insert(v).second) violation("make_mqar: repeated key or value");
    }
    std::int64_t scored = 0;
    for (std::int64_t p = 0; p < T; ++p) {
      const int tok = ds.data.tokens(b, p), target = ds.data.targets(b, p);
      if (tok < 1 || tok > o.vocab - 1) violation("make_mqar: token out of range");
      const bool query = p >= T - 2 * n && (p - (T - 2 * n)) % 2 == 0;
      if (query != (target != tasks::kIgnore)) violation("make_mqar: a target outside the query positions");
      if (query) {
        ++scored;
        const auto at = std::find(&ds.data.tokens(b, 0), &ds.data.tokens(b, 0) + 2 * n, tok);
        if (!keys.count(tok) || *(at + 1) != target) violation("make_mqar: a query's target is not its value");
      }
    }
    if (scored != n) violation("make_mqar: wrong number of scored positions");
  }
}

inline void fuzz_selective_copy(FuzzInput& in) {
  using Vocab = tasks::SelectiveCopyVocab;
  tasks::SelectiveCopyOptions o;
  o.length = in.index();
  o.tokens = in.index();
  const std::int64_t count = in.index();
  const std::uint64_t seed = in.u64();
  std::string refusal;
  const bool ok = returns_or_refuses([&] { tasks::check_selective_copy(o, count); }, {"tokens:", "length:", "count:"},
                                     &refusal);
  if (ok != selective_copy_documented_ok(o, count)) {
    violation("check_selective_copy " + std::string(ok ? "accepted" : "refused (" + refusal + ")") + " length " +
              std::to_string(o.length) + " tokens " + std::to_string(o.tokens) + " count " + std::to_string(count) +
              ", against its documented rules");
  }
  if (!ok) return expect_same_refusal([&] { tasks::make_selective_copy(o, count, seed); }, refusal);
  if (count * o.length > kTaskBudget) return;
  const tasks::Dataset ds = tasks::make_selective_copy(o, count, seed);
  if (ds.size() != count || ds.length() != o.length) violation("make_selective_copy: wrong dataset shape");
  const std::int64_t T = o.length, n = o.tokens;
  for (std::int64_t b = 0; b < count; ++b) {
    std::vector<int> data;
    for (std::int64_t p = 0; p < T - n - 1; ++p) {
      const int tok = ds.data.tokens(b, p);
      if (tok >= Vocab::data_first && tok <= Vocab::data_last) {
        data.push_back(tok);
      } else if (tok < Vocab::noise_first || tok > Vocab::noise_last) {
        violation("make_selective_copy: input token out of range");
      }
    }
    if (std::int64_t(data.size()) != n || ds.data.tokens(b, T - n - 1) != Vocab::separator) {
      violation("make_selective_copy: wrong input phase");
    }
    for (std::int64_t i = 0; i < n; ++i) {
      if (ds.data.tokens(b, T - n + i) != Vocab::blank || ds.data.targets(b, T - n - 1 + i) != data[size_t(i)]) {
        violation("make_selective_copy: wrong output phase");
      }
    }
  }
  if (ds.data.scored() != count * n) violation("make_selective_copy: wrong number of scored positions");
}

inline void fuzz_char_lm(FuzzInput& in) {
  const double fraction = in.real();
  const std::int64_t count = in.index(), length = in.index(), max_windows = in.index();
  const std::uint64_t seed = in.u64();
  const std::string text(in.rest());
  std::optional<tasks::CharCorpus> made;
  if (!returns_or_refuses([&] { made.emplace(text, fraction); }, {"valid_fraction:", "corpus:"})) return;
  const tasks::CharCorpus* corpus = &*made;
  if (corpus->train_size() + corpus->valid_size() != std::int64_t(text.size())) violation("corpus: bytes lost");
  // sample_train: generated when cheap, called anyway when its documented rules refuse it.
  using i128 = __int128;
  const bool train_ok = length >= 1 && length < corpus->train_size() && count >= 1 &&
                        i128(count) * length <= tasks::kMaxDatasetTokens;
  if (!train_ok || i128(count) * length <= kTaskBudget) {
    std::optional<tasks::Batch> b;
    const bool ok = returns_or_refuses([&] { b.emplace(corpus->sample_train(count, length, seed)); },
                                       {"length:", "count:"});
    if (ok != train_ok) violation("sample_train: " + std::string(ok ? "accepted" : "refused") + " count " +
                                  std::to_string(count) + " length " + std::to_string(length));
    if (ok) {
      for (std::int64_t i = 0; i < count; ++i)
        for (std::int64_t p = 0; p + 1 < length; ++p)
          if (b->targets(i, p) != b->tokens(i, p + 1)) violation("sample_train: a target is not the next byte");
    }
  }
  // valid_windows never makes more than the validation split's bytes.
  std::optional<tasks::Batch> v;
  const bool ok = returns_or_refuses([&] { v.emplace(corpus->valid_windows(length, max_windows)); },
                                     {"length:", "max_windows:"});
  const bool valid_ok = length >= 1 && length < corpus->valid_size() && max_windows >= 1;
  if (ok != valid_ok) violation("valid_windows: " + std::string(ok ? "accepted" : "refused") + " length " +
                                std::to_string(length) + " max_windows " + std::to_string(max_windows));
  if (ok) {
    const std::int64_t n = std::min<std::int64_t>(max_windows, (corpus->valid_size() - 1) / length);
    if (v->tokens.dim(0) != n || v->tokens.dim(1) != length) violation("valid_windows: wrong shape");
    const std::string valid = text.substr(size_t(corpus->train_size()));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t p = 0; p < length; ++p)
        if (v->tokens(i, p) != static_cast<unsigned char>(valid[size_t(i * length + p)]) ||
            v->targets(i, p) != static_cast<unsigned char>(valid[size_t(i * length + p + 1)])) {
          violation("valid_windows: a window is not the validation bytes");
        }
  }
}

inline void fuzz_dataset(FuzzInput& in) {
  const tasks::Dataset ds = tasks::make_mqar({8, 2, 16}, 4, in.u64());
  const std::int64_t begin = in.index(), end = in.index();
  std::optional<tasks::Batch> r;
  const bool ok = returns_or_refuses([&] { r.emplace(ds.range(begin, end)); }, {"range:"});
  if (ok != (begin >= 0 && end <= ds.size() && begin < end)) violation("range: wrong verdict");
  if (ok && r->tokens.dim(0) != end - begin) violation("range: wrong size");
  std::vector<Index> indices(in.byte() % 8);
  bool in_range = true;
  for (auto& i : indices) {
    i = in.index();
    in_range = in_range && i >= 0 && i < ds.size();
  }
  if (returns_or_refuses([&] { ds.gather(indices); }, {"indices:"}) != in_range) violation("gather: wrong verdict");
}

/// One fuzz input: the first byte picks the generator, the rest are its arguments.
inline void tasks_one_input(const std::uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  switch (in.byte() % 4) {
    case 0: return fuzz_mqar(in);
    case 1: return fuzz_selective_copy(in);
    case 2: return fuzz_char_lm(in);
    default: return fuzz_dataset(in);
  }
}

}  // namespace loglinear::fuzz
