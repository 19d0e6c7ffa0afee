// MQAR generator, SPEC.md §9.1 (see mqar.hpp for the layout).
#include <loglinear/tasks/mqar.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

namespace loglinear::tasks {

namespace {
// The first n entries of a random permutation of [lo, hi].
std::vector<std::int32_t> sample_without_replacement(std::int32_t lo, std::int32_t hi, Index n,
                                                     std::mt19937_64& rng) {
  std::vector<std::int32_t> pool(static_cast<size_t>(hi - lo + 1));
  std::iota(pool.begin(), pool.end(), lo);
  std::shuffle(pool.begin(), pool.end(), rng);
  pool.resize(static_cast<size_t>(n));
  return pool;
}
}  // namespace

void check_mqar(const MqarOptions& o, Index count) {
  const Index T = o.length, n = o.pairs, V = o.vocab;
  if (V < 4 || V > kMaxMqarVocab) {
    throw std::invalid_argument("vocab: expected 4 <= vocab <= " + std::to_string(kMaxMqarVocab) + ", got " +
                                std::to_string(V));
  }
  if (n < 1) throw std::invalid_argument("pairs: expected >= 1, got " + std::to_string(n));
  if (T < 4) {
    throw std::invalid_argument("length: expected >= 4 (4 * pairs tokens: a key and its value, a query and "
                                "its answer slot per pair), got " + std::to_string(T));
  }
  const Index max_keys = V / 2 - 1, max_pairs = std::min(T / 4, max_keys);
  if (n > max_pairs) {
    throw std::invalid_argument("pairs: expected at most " + std::to_string(max_pairs) + " pairs for length " +
                                std::to_string(T) + " and vocab " + std::to_string(V) +
                                " (4 * pairs <= length: a key and its value, a query and its answer slot per "
                                "pair; pairs <= vocab/2 - 1 = " + std::to_string(max_keys) +
                                " distinct keys), got " + std::to_string(n));
  }
  check_dataset_size(count, T);
  // T <= 2^28 and V <= 2^16 here, so T + V cannot overflow.
  if (count > kMaxMqarWork / (T + V)) {
    throw std::invalid_argument("count: expected count * (length + vocab) <= 2^30 = " + std::to_string(kMaxMqarWork) +
                                " (each sequence draws length tokens and shuffles the vocabulary), got " +
                                std::to_string(count) + " * (" + std::to_string(T) + " + " + std::to_string(V) +
                                ")");
  }
}

Dataset make_mqar(const MqarOptions& o, Index count, std::uint64_t seed) {
  check_mqar(o, count);
  const Index T = o.length, n = o.pairs, half = o.vocab / 2;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int32_t> noise(1, std::int32_t(o.vocab - 1));
  Dataset ds{{Tensor<std::int32_t, 2>({count, T}), Tensor<std::int32_t, 2>({count, T})}};
  for (Index b = 0; b < count; ++b) {
    for (Index p = 0; p < T; ++p) {
      ds.data.tokens(b, p) = noise(rng);
      ds.data.targets(b, p) = kIgnore;
    }
    const auto keys = sample_without_replacement(1, std::int32_t(half - 1), n, rng);
    const auto values = sample_without_replacement(std::int32_t(half), std::int32_t(o.vocab - 1), n, rng);
    for (Index i = 0; i < n; ++i) {
      ds.data.tokens(b, 2 * i) = keys[i];
      ds.data.tokens(b, 2 * i + 1) = values[i];
    }
    std::vector<Index> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), Index{0});
    std::shuffle(order.begin(), order.end(), rng);
    for (Index i = 0; i < n; ++i) {
      const Index p = T - 2 * n + 2 * i;
      ds.data.tokens(b, p) = keys[order[i]];
      ds.data.targets(b, p) = values[order[i]];
    }
  }
  return ds;
}

PositionTypes mqar_position_types(const MqarOptions& o, Index count) {
  check_mqar(o, count);
  const Index T = o.length, n = o.pairs;
  enum : std::int32_t { key, value, query, filler };
  PositionTypes out{{"key", "value", "query", "filler"}, Tensor<std::int32_t, 2>({count, T})};
  for (Index b = 0; b < count; ++b) {
    for (Index p = 0; p < T; ++p) out.ids(b, p) = filler;
    for (Index i = 0; i < n; ++i) {
      out.ids(b, 2 * i) = key;
      out.ids(b, 2 * i + 1) = value;
      out.ids(b, T - 2 * n + 2 * i) = query;
    }
  }
  return out;
}

}  // namespace loglinear::tasks
