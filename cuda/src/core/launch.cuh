// Launch helpers of the layer kernels (nn/, lambda/, decay/, train/): grid sizes for one thread
// per element, a grid-stride loop, and the check after every launch. No SPEC section.
#pragma once

#include "../cuda_check.cuh"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

namespace loglinear::cuda {

/// Threads per block of the elementwise kernels.
constexpr int kThreads = 256;

/// Blocks for one thread per element of n (grid-stride loops cover the rest past 2^16 blocks).
inline unsigned blocks_for(std::int64_t n, int threads = kThreads) {
  const std::int64_t b = (n + threads - 1) / threads;
  return unsigned(std::clamp<std::int64_t>(b, 1, 65535));
}

/// Checks the launch that was just queued (bad configuration, missing kernel image); the errors of
/// the kernel's execution surface at the next synchronising call.
inline void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), kernel);
}

}  // namespace loglinear::cuda

/// for (i = this thread's first index; i < n; i += grid stride): every elementwise kernel's loop.
#define LOGLINEAR_GRID_LOOP(i, n)                                                            \
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);        \
       i += std::int64_t(blockDim.x) * gridDim.x)
