// Fenwick levels (SPEC.md §2): integer-only implementations of ell(t, s), L(T) and the bucket
// decomposition of a prefix. tests/core/test_fenwick.cpp checks them against a recursive
// "strip the highest bit" definition and against the bucket masks.
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <limits>

#include <stdexcept>
#include <string>

namespace loglinear {

int level(Index t, Index s) {
  if (t < 0 || s < 0 || s > t) {
    throw std::invalid_argument("level(t, s): expected 0 <= s <= t, got t = " + std::to_string(t) +
                                ", s = " + std::to_string(s));
  }
  // s and t agree above the highest differing bit; that bit decides which bucket holds s.
  return bit_width(static_cast<std::uint64_t>(t ^ s));
}

int num_levels(Index T) {
  if (T < 1) {
    throw std::invalid_argument("num_levels(T): expected T >= 1, got T = " + std::to_string(T));
  }
  // ceil(log2 T) + 1 == bit_width(T - 1) + 1 for T >= 1 (T = 1 gives 1 level).
  return bit_width(static_cast<std::uint64_t>(T - 1)) + 1;
}

std::vector<Bucket> buckets(Index t) {
  // The level-0 bucket ends at t + 1, so t = 2^63 - 1 has no representable end.
  if (t < 0 || t == std::numeric_limits<Index>::max()) {
    throw std::invalid_argument("buckets(t): expected 0 <= t < 2^63 - 1, got t = " + std::to_string(t));
  }
  std::vector<Bucket> out{{0, t, t + 1}};
  for (int l = 1; l <= bit_width(static_cast<std::uint64_t>(t)); ++l) {
    const Index h = Index{1} << (l - 1);
    if (!(t & h)) continue;
    const Index t_cleared = t & ~(h - 1);  // t with its low l-1 bits cleared
    out.push_back({l, t_cleared - h, t_cleared});
  }
  return out;
}

std::vector<int> level_table(Index C) {
  if (C < 1) throw std::invalid_argument("level_table(C): expected C >= 1, got C = " + std::to_string(C));
  check_allocation("level_table(C): the C x C table", checked_product("level_table(C): C x C", {C, C}), sizeof(int));
  std::vector<int> lut(static_cast<size_t>(C * C), -1);
  for (Index i = 0; i < C; ++i)
    for (Index j = 0; j <= i; ++j) lut[i * C + j] = level(i, j);
  return lut;
}

}  // namespace loglinear
