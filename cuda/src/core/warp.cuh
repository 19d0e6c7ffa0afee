// Warp-level sums in a fixed order (a butterfly over the 32 lanes): every lane ends with the same
// value, bit for bit the same run after run. Used by the row-wise kernels (norms, softmax).
#pragma once

namespace loglinear::cuda::device {

/// Sum of v over the 32 lanes of a full warp, returned to every lane.
__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
/// Maximum of v over the 32 lanes, returned to every lane.
__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace loglinear::cuda::device
