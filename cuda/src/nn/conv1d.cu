// Causal depthwise conv1d on the GPU (loglinear/cuda/nn/conv1d.hpp). Element i of a [B*T, C]
// matrix is row r = i / C (position t = r % T of its sequence), channel c = i % C; tap j reads row
// r - (W-1) + j, which lies in the same sequence exactly when t - (W-1) + j >= 0. Forward and dx
// sum their W taps in the CPU twin's order; dw [C, W] is reduced over the rows in two passes
// (partial sums per block of rows into Context::scratch, then the blocks in order) with no atomics.
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/nn/conv1d.hpp>

#include "../core/launch.cuh"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

constexpr int kCols = 32;                     // channels per block of the dw reduction: one warp, coalesced
constexpr int kRowThreads = 8;                // threads down the rows of a block
constexpr int kTaps = 4;                      // taps per block (grid.z covers W > 4)
constexpr std::int64_t kRowsPerBlock = 256;   // at least; more when rows / 256 > 65535 (grid.y)

std::string shape(const DeviceMatrix& m) { return "[" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "]"; }

void check_x_w(const DeviceMatrix& x, Index B, const DeviceMatrix& w) {
  if (B < 1 || x.rows() % B != 0)
    throw std::invalid_argument("x: expected shape [B*T, C] with rows divisible by B = " + std::to_string(B) +
                                ", got " + shape(x));
  if (w.rows() != x.cols() || w.cols() < 1)
    throw std::invalid_argument("w: expected shape [C, W] with C = " + std::to_string(x.cols()) + " and W >= 1, got " +
                                shape(w));
}

void check_row(const DeviceMatrix& m, Index C, const char* name) {
  if (m.rows() != 1 || m.cols() != C)
    throw std::invalid_argument(std::string(name) + ": expected shape [1, C] = [1, " + std::to_string(C) + "], got " +
                                shape(m));
}

// y[r, c] = bias[c] + sum_j w[c, j] x[r - (W-1) + j, c] over the taps inside the sequence.
__global__ void conv1d_rows(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                            std::int64_t n, int C, int W, std::int64_t T, float* __restrict__ y) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const std::int64_t r = i / C;
    const int c = int(i - r * C);
    const std::int64_t t = r % T;
    float acc = bias[c];
    for (int j = 0; j < W; ++j) {
      if (t - (W - 1) + j < 0) continue;
      acc += w[std::int64_t(c) * W + j] * x[(r - (W - 1) + j) * C + c];
    }
    y[i] = acc;
  }
}

// dx[r, c] = sum_j w[c, j] dy[r + (W-1) - j, c] over the outputs inside the sequence, j from W-1
// down (the output position increasing, as the CPU twin's loop over t).
__global__ void conv1d_rows_backward(const float* __restrict__ dy, const float* __restrict__ w, std::int64_t n, int C,
                                     int W, std::int64_t T, float* __restrict__ dx) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const std::int64_t r = i / C;
    const int c = int(i - r * C);
    const std::int64_t s = r % T;
    float acc = 0.f;
    for (int j = W - 1; j >= 0; --j) {
      if (s + (W - 1) - j >= T) break;  // later taps reach further past the sequence's end
      acc += w[std::int64_t(c) * W + j] * dy[(r + (W - 1) - j) * C + c];
    }
    dx[i] = acc;
  }
}

// Pass 1 of dw: block (x: channels, y: rows, z: taps j0 .. j0 + kTaps - 1) writes
// partial[blockIdx.y, c W + j] = sum over its rows r of dy[r, c] x[r - (W-1) + j, c]. Each
// thread sums a fixed stride of rows, then thread row 0 adds the kRowThreads sums in order.
__global__ void conv1d_dw_partial(const float* __restrict__ x, const float* __restrict__ dy, std::int64_t rows, int C,
                                  int W, std::int64_t T, std::int64_t rows_per_block, float* __restrict__ partial) {
  __shared__ float sums[kTaps][kRowThreads][kCols];
  const int c = int(blockIdx.x) * kCols + int(threadIdx.x);
  const int j0 = int(blockIdx.z) * kTaps;
  const int nj = min(kTaps, W - j0);
  const std::int64_t r0 = std::int64_t(blockIdx.y) * rows_per_block;
  const std::int64_t r1 = min(r0 + rows_per_block, rows);
  float acc[kTaps];
#pragma unroll
  for (int k = 0; k < kTaps; ++k) acc[k] = 0.f;
  if (c < C)
    for (std::int64_t r = r0 + threadIdx.y; r < r1; r += kRowThreads) {
      const std::int64_t t = r % T;
      const float g = dy[r * C + c];
#pragma unroll
      for (int k = 0; k < kTaps; ++k) {
        const int j = j0 + k;
        if (k < nj && t - (W - 1) + j >= 0) acc[k] += g * x[(r - (W - 1) + j) * C + c];
      }
    }
#pragma unroll
  for (int k = 0; k < kTaps; ++k) sums[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    const std::int64_t cw = std::int64_t(C) * W;
    for (int k = 0; k < nj; ++k) {
      float total = 0.f;
      for (int i = 0; i < kRowThreads; ++i) total += sums[k][i][threadIdx.x];
      partial[std::int64_t(blockIdx.y) * cw + std::int64_t(c) * W + j0 + k] = total;
    }
  }
}

// Pass 2 of dw: dw[k] += the row blocks' partial sums of entry k, in block order.
__global__ void conv1d_dw_final(const float* __restrict__ partial, std::int64_t blocks, std::int64_t cw,
                                float* __restrict__ dw) {
  LOGLINEAR_GRID_LOOP(k, cw) {
    float total = 0.f;
    for (std::int64_t b = 0; b < blocks; ++b) total += partial[b * cw + k];
    dw[k] += total;
  }
}

}  // namespace

void conv1d_forward(Context& ctx, const DeviceMatrix& x, Index B, const DeviceMatrix& w, const DeviceMatrix& bias,
                    DeviceMatrix& y) {
  check_x_w(x, B, w);
  check_row(bias, x.cols(), "bias");
  const Index N = x.rows(), C = x.cols();
  y.resize(N, C);
  if (N == 0 || C == 0) return;
  conv1d_rows<<<blocks_for(N * C), kThreads, 0, ctx.stream()>>>(x.data(), w.data(), bias.data(), N * C, int(C),
                                                                  int(w.cols()), N / B, y.data());
  check_launch("conv1d_rows");
}

void conv1d_backward(Context& ctx, const DeviceMatrix& x, Index B, const DeviceMatrix& w, const DeviceMatrix& dy,
                     DeviceMatrix& dw, DeviceMatrix& dbias, DeviceMatrix& dx) {
  check_x_w(x, B, w);
  if (dy.rows() != x.rows() || dy.cols() != x.cols())
    throw std::invalid_argument("dy: expected the shape of x " + shape(x) + ", got " + shape(dy));
  if (dw.rows() != w.rows() || dw.cols() != w.cols())
    throw std::invalid_argument("dw: expected the shape of w " + shape(w) + ", got " + shape(dw));
  check_row(dbias, x.cols(), "dbias");
  const Index N = x.rows(), C = x.cols(), W = w.cols(), T = N / B;
  dx.resize(N, C);
  if (N == 0 || C == 0) return;
  conv1d_rows_backward<<<blocks_for(N * C), kThreads, 0, ctx.stream()>>>(dy.data(), w.data(), N * C, int(C), int(W), T,
                                                                         dx.data());
  check_launch("conv1d_rows_backward");

  const std::int64_t per_block = std::max(kRowsPerBlock, (N + 65534) / 65535);
  const std::int64_t blocks = (N + per_block - 1) / per_block;
  float* partial = ctx.scratch(std::size_t(blocks * C * W));
  const dim3 grid(unsigned((C + kCols - 1) / kCols), unsigned(blocks), unsigned((W + kTaps - 1) / kTaps));
  conv1d_dw_partial<<<grid, dim3(kCols, kRowThreads), 0, ctx.stream()>>>(x.data(), dy.data(), N, int(C), int(W), T,
                                                                        per_block, partial);
  check_launch("conv1d_dw_partial");
  conv1d_dw_final<<<blocks_for(C * W), kThreads, 0, ctx.stream()>>>(partial, blocks, C * W, dw.data());
  check_launch("conv1d_dw_final");
  // After the dw passes in stream order: column_sum takes the scratch over (growing it waits).
  column_sum(ctx, dy, dbias, true);
}

}  // namespace loglinear::cuda::nn
