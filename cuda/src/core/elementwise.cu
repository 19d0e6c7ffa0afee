// Elementwise helpers (loglinear/cuda/core/elementwise.hpp).
#include <loglinear/cuda/core/elementwise.hpp>

#include "launch.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda {
namespace {
__global__ void add_into_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t n) {
  LOGLINEAR_GRID_LOOP(i, n) y[i] += x[i];
}
}  // namespace

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
