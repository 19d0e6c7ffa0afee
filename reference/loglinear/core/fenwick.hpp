// Fenwick (binary indexed) levels of log-linear attention, SPEC.md §2.
// Pure integer bit arithmetic: no floating-point log2, so exact powers of two are never
// misclassified. Every form (naive, recurrent, chunked, CUDA) takes its levels from here.
/// \file
/// \brief Fenwick (binary indexed) levels of log-linear attention, SPEC.md §2.
/// \ingroup floor_core
#pragma once

#include <loglinear/core/tensor.hpp>

#include <vector>

namespace loglinear {

/// Number of bits needed to represent `x` (0 for 0): C++20's std::bit_width for C++17.
/// One count-leading-zeros instruction; the naive form calls it T^2 times.
constexpr int bit_width(std::uint64_t x) { return x == 0 ? 0 : 64 - __builtin_clzll(x); }

/// Level of source token `s` as seen from query token `t` (0-indexed, s <= t).
///
/// ell(t, s) = 0 if s == t, else bit_width(t XOR s) (SPEC.md §2, "weak" hierarchy).
/// @throws std::invalid_argument if s > t or either is negative.
int level(Index t, Index s);

/// Number of Fenwick levels a sequence of length T needs: ceil(log2 T) + 1.
///
/// T = 1 -> 1, T = 2 -> 2, T = 5..8 -> 4, T = 1000 -> 11, T = 16384 -> 15.
/// @throws std::invalid_argument if T < 1.
int num_levels(Index T);

/// One Fenwick bucket of a prefix [0, t]: the half-open token range [begin, end) at `level`.
struct Bucket {
  int level;   ///< level l seen from t; bucket size is 1 for l = 0 and 2^(l-1) otherwise
  Index begin; ///< first token of the bucket
  Index end;   ///< one past the last token
};

/// The non-empty buckets B_l(t) of the prefix [0, t], level 0 first (SPEC.md §2).
///
/// B_0(t) = {t}; for l >= 1, with h = 2^(l-1) and t' = t with its low l-1 bits cleared,
/// B_l(t) = [t' - h, t') if bit l-1 of t is set, else empty. They partition [0, t].
/// @throws std::invalid_argument if t < 0 or t = 2^63 - 1 (its level-0 bucket's end, t + 1,
///         would overflow).
std::vector<Bucket> buckets(Index t);

/// The C x C table LUT[i][j] = ell(i, j) for j <= i (-1 above the diagonal), row-major.
///
/// Serves every diagonal chunk block of the chunked form, because ell(zC+i, zC+j) = ell(i, j)
/// for C a power of two (SPEC.md §2, chunk property).
/// @throws std::invalid_argument if C < 1 or the C x C table cannot fit in memory (checked
///         before allocating).
std::vector<int> level_table(Index C);

}  // namespace loglinear
