// Column sums (loglinear/cuda/core/reduce.hpp) in two deterministic passes: blocks of kRowsPerBlock
// rows write partial sums to scratch [row blocks, cols]; then one thread per column adds the
// partials in order. Each thread's own loop and the in-block tree are fixed by the launch shape
// alone, so the result does not depend on timing.
#include <loglinear/cuda/core/reduce.hpp>

#include "launch.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda {
namespace {

constexpr int kColsPerBlock = 32;  // one warp across columns: coalesced row reads
constexpr int kRowThreads = 8;     // threads down the rows of a block
constexpr std::int64_t kRowsPerBlock = 256;  // at least; more when rows / 256 > 65535 (grid.y)

__global__ void column_partial_sums(const float* __restrict__ m, std::int64_t rows, std::int64_t cols,
                                    std::int64_t rows_per_block, float* __restrict__ partial) {
  __shared__ float acc[kRowThreads][kColsPerBlock];
  const std::int64_t c = std::int64_t(blockIdx.x) * kColsPerBlock + threadIdx.x;
  const std::int64_t r0 = std::int64_t(blockIdx.y) * rows_per_block;
  const std::int64_t r1 = min(r0 + rows_per_block, rows);
  float s = 0.f;
  if (c < cols)
    for (std::int64_t r = r0 + threadIdx.y; r < r1; r += kRowThreads) s += m[r * cols + c];
  acc[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.f;
    for (int i = 0; i < kRowThreads; ++i) t += acc[i][threadIdx.x];
    partial[std::int64_t(blockIdx.y) * cols + c] = t;
  }
}

__global__ void column_final_sums(const float* __restrict__ partial, std::int64_t blocks, std::int64_t cols,
                                  float* __restrict__ out, bool accumulate) {
  LOGLINEAR_GRID_LOOP(c, cols) {
    float t = 0.f;
    for (std::int64_t b = 0; b < blocks; ++b) t += partial[b * cols + c];
    out[c] = accumulate ? out[c] + t : t;
  }
}

}  // namespace

void column_sum(Context& ctx, const float* m, Index rows, Index cols, float* out, bool accumulate) {
  if (cols == 0) return;
  const std::int64_t per_block = std::max(kRowsPerBlock, (rows + 65534) / 65535);
  const std::int64_t blocks = std::max<std::int64_t>(1, (rows + per_block - 1) / per_block);
  float* partial = ctx.scratch(std::size_t(blocks * cols));
  const dim3 grid(unsigned((cols + kColsPerBlock - 1) / kColsPerBlock), unsigned(blocks));
  column_partial_sums<<<grid, dim3(kColsPerBlock, kRowThreads), 0, ctx.stream()>>>(m, rows, cols, per_block, partial);
  check_launch("column_partial_sums");
  column_final_sums<<<blocks_for(cols), kThreads, 0, ctx.stream()>>>(partial, blocks, cols, out, accumulate);
  check_launch("column_final_sums");
}

void column_sum(Context& ctx, const DeviceMatrix& m, DeviceMatrix& out, bool accumulate) {
  if (accumulate) {
    if (out.rows() != 1 || out.cols() != m.cols())
      throw std::invalid_argument("out: expected shape [1, " + std::to_string(m.cols()) + "] to accumulate into, got [" +
                                  std::to_string(out.rows()) + ", " + std::to_string(out.cols()) + "]");
  } else {
    out.resize(1, m.cols());
  }
  column_sum(ctx, m.data(), m.rows(), m.cols(), out.data(), accumulate);
}

}  // namespace loglinear::cuda
