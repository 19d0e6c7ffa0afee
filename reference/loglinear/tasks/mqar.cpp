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

Dataset make_mqar(const MqarOptions& o, Index count, std::uint64_t seed) {
  const Index T = o.length, n = o.pairs, half = o.vocab / 2;
  if (o.vocab < 4) throw std::invalid_argument("vocab: expected >= 4, got " + std::to_string(o.vocab));
  if (n < 1 || n > half - 1) {
    throw std::invalid_argument("pairs: expected 1 <= pairs <= vocab/2 - 1 = " +
                                std::to_string(half - 1) + ", got " + std::to_string(n));
  }
  if (T < 4 * n) {
    throw std::invalid_argument("length: expected >= 4 * pairs = " + std::to_string(4 * n) +
                                " (pairs, gap and queries), got " + std::to_string(T));
  }
  if (count < 1) throw std::invalid_argument("count: expected >= 1, got " + std::to_string(count));
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

}  // namespace loglinear::tasks
