// Rounding to bfloat16 for the tests of the bf16 GPU path: the reference is given the values the
// bf16 path uploads, so that what is compared is the kernels' own error.
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cstdint>
#include <cstring>

namespace loglinear::test {

/// Round-to-nearest-even to bfloat16 (the top 16 bits of a float), written here from the format
/// rather than taken from cuda_bf16.h, so the tests do not share code with what they check.
inline float round_to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  u &= 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

/// round_to_bf16 on every element of t.
template <int Rank>
void round_all(Tensor<float, Rank>& t) {
  for (Index i = 0; i < t.size(); ++i) t.data()[i] = round_to_bf16(t.data()[i]);
}

}  // namespace loglinear::test
