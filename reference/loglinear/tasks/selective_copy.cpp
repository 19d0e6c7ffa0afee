// Selective-copying generator, SPEC.md §9.2 (see selective_copy.hpp for the layout).
#include <loglinear/tasks/selective_copy.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

namespace loglinear::tasks {

void check_selective_copy(const SelectiveCopyOptions& o, Index count) {
  using Vocab = SelectiveCopyVocab;
  const Index T = o.length, n = o.tokens;
  const Index data_count = Vocab::data_last - Vocab::data_first + 1;
  if (n < 1 || n > data_count) {
    throw std::invalid_argument("tokens: expected 1.." + std::to_string(data_count) + " data tokens (distinct tokens " +
                                std::to_string(Vocab::data_first) + ".." + std::to_string(Vocab::data_last) +
                                "), got " + std::to_string(n));
  }
  if (T < 2 * n + 1) {
    throw std::invalid_argument("length: expected >= 2 * tokens + 1 = " + std::to_string(2 * n + 1) +
                                " (the tokens in an input phase at least as long, the separator, a blank per "
                                "token), got " + std::to_string(T));
  }
  check_dataset_size(count, T);
}

Dataset make_selective_copy(const SelectiveCopyOptions& o, Index count, std::uint64_t seed) {
  using Vocab = SelectiveCopyVocab;
  check_selective_copy(o, count);
  const Index T = o.length, n = o.tokens;
  const Index data_count = Vocab::data_last - Vocab::data_first + 1;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> noise(Vocab::noise_first, Vocab::noise_last);
  const Index input_len = T - n - 1;
  Dataset ds{{Tensor<std::int32_t, 2>({count, T}), Tensor<std::int32_t, 2>({count, T})}};
  std::vector<std::int32_t> data_pool(static_cast<size_t>(data_count));
  std::iota(data_pool.begin(), data_pool.end(), Vocab::data_first);
  std::vector<Index> positions(static_cast<size_t>(input_len));
  for (Index b = 0; b < count; ++b) {
    for (Index p = 0; p < T; ++p) ds.data.targets(b, p) = kIgnore;
    for (Index p = 0; p < input_len; ++p) ds.data.tokens(b, p) = noise(rng);
    std::shuffle(data_pool.begin(), data_pool.end(), rng);
    std::iota(positions.begin(), positions.end(), Index{0});
    std::shuffle(positions.begin(), positions.end(), rng);
    std::sort(positions.begin(), positions.begin() + n);
    for (Index i = 0; i < n; ++i) ds.data.tokens(b, positions[i]) = data_pool[i];
    ds.data.tokens(b, input_len) = Vocab::separator;
    for (Index i = 0; i < n; ++i) {
      ds.data.tokens(b, input_len + 1 + i) = Vocab::blank;
      ds.data.targets(b, input_len + i) = data_pool[i];  // in order of position
    }
  }
  return ds;
}

PositionTypes selective_copy_position_types(const SelectiveCopyOptions& o, const Dataset& ds) {
  using Vocab = SelectiveCopyVocab;
  check_selective_copy(o, ds.size());
  const Index T = o.length, n = o.tokens, input_len = T - n - 1;
  if (ds.length() != T)
    throw std::invalid_argument("ds: expected sequences of length " + std::to_string(T) + ", got " +
                                std::to_string(ds.length()));
  enum : std::int32_t { data, noise, query };
  PositionTypes out{{"data", "noise", "query"}, Tensor<std::int32_t, 2>({ds.size(), T})};
  for (Index b = 0; b < ds.size(); ++b) {
    Index data_count = 0;
    for (Index p = 0; p < T; ++p) {
      const std::int32_t tok = ds.data.tokens(b, p);
      const bool is_data = p < input_len && tok >= Vocab::data_first && tok <= Vocab::data_last;
      out.ids(b, p) = p >= input_len ? query : is_data ? data : noise;
      data_count += is_data;
    }
    if (data_count != n)
      throw std::invalid_argument("ds: expected " + std::to_string(n) + " data tokens in the input phase of "
                                  "sequence " + std::to_string(b) + ", got " + std::to_string(data_count) +
                                  " (not made by make_selective_copy with these options?)");
  }
  return out;
}

}  // namespace loglinear::tasks
