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

/// Grid of a [rows, cols] kernel (LOGLINEAR_ROWS_COLS_LOOP): x across the columns, y down the rows
/// (rows past 65535 loop). Row and column come from the block and thread indices, so the kernel
/// divides nothing per element: a 64-bit division per element (i / cols) costs more instructions
/// than the element's load and store in the memory-bound layer kernels.
inline dim3 grid_rows_cols(std::int64_t rows, std::int64_t cols, int threads = kThreads) {
  const std::int64_t bx = std::clamp<std::int64_t>((cols + threads - 1) / threads, 1, 65535);
  return dim3(unsigned(bx), unsigned(std::clamp<std::int64_t>(rows, 1, 65535)));
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

/// for (n = this block's rows) for (c = this thread's columns < cols): the [rows, cols] kernels'
/// loops, launched with grid_rows_cols(rows, cols) and kThreads threads. cols < 2^31.
#define LOGLINEAR_ROWS_COLS_LOOP(n, c, rows, cols)                                            \
  for (std::int64_t n = blockIdx.y; n < (rows); n += gridDim.y)                               \
    for (int c = int(blockIdx.x * blockDim.x + threadIdx.x); c < int(cols); c += int(blockDim.x * gridDim.x))
