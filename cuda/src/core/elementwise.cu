// Elementwise helpers (loglinear/cuda/core/elementwise.hpp).
#include <loglinear/cuda/core/elementwise.hpp>

#include "launch.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda {
namespace {
__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ b, std::int64_t n, std::int64_t cols) {
  LOGLINEAR_GRID_LOOP(i, n) y[i] += b[i % cols];
}
__global__ void add_into_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t n) {
  LOGLINEAR_GRID_LOOP(i, n) y[i] += x[i];
}
}  // namespace

void copy_device(Context& ctx, float* dst, const float* src, Index n) {
  if (n > 0)
    check_cuda(cudaMemcpyAsync(dst, src, std::size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream()),
               "cudaMemcpyAsync (device to device)");
}

void copy(Context& ctx, const DeviceMatrix& from, DeviceMatrix& to) {
  to.resize(from.rows(), from.cols());
  copy_device(ctx, to.data(), from.data(), from.size());
}

void add_bias(Context& ctx, float* y, const float* b, Index rows, Index cols) {
  if (rows * cols == 0) return;
  add_bias_kernel<<<blocks_for(rows * cols), kThreads, 0, ctx.stream()>>>(y, b, rows * cols, cols);
  check_launch("add_bias_kernel");
}

void add_into(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y) {
  if (x.rows() != y.rows() || x.cols() != y.cols())
    throw std::invalid_argument("x: expected the shape of y [" + std::to_string(y.rows()) + ", " +
                                std::to_string(y.cols()) + "], got [" + std::to_string(x.rows()) + ", " +
                                std::to_string(x.cols()) + "]");
  if (y.size() == 0) return;
  add_into_kernel<<<blocks_for(y.size()), kThreads, 0, ctx.stream()>>>(x.data(), y.data(), y.size());
  check_launch("add_into_kernel");
}

}  // namespace loglinear::cuda
