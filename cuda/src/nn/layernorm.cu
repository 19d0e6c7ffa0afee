// LayerNorm on the GPU (loglinear/cuda/nn/layernorm.hpp), one warp per row. Mean and variance
// are two passes over the row (as the CPU twin: mean first, then the mean of squared deviations),
// not the one-pass E[x^2] - E[x]^2, which cancels badly.
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/nn/layernorm.hpp>

#include "../core/launch.cuh"
#include "../core/warp.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr float kEps = 1e-5f;  // as nn::layernorm_forward

__global__ void layernorm_rows(const float* __restrict__ x, const float* __restrict__ gamma,
                               const float* __restrict__ beta, std::int64_t N, int d, float* __restrict__ xhat,
                               float* __restrict__ rstd, float* __restrict__ y) {
  const std::int64_t n = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (n >= N) return;
  const int lane = threadIdx.x;
  const float* xr = x + n * d;
  float s = 0.f;
  for (int c = lane; c < d; c += 32) s += xr[c];
  const float mean = device::warp_sum(s) / float(d);
  float v = 0.f;
  for (int c = lane; c < d; c += 32) {
    const float t = xr[c] - mean;
    v += t * t;
  }
  const float r = 1.f / sqrtf(device::warp_sum(v) / float(d) + kEps);  // IEEE, as the CPU (not rsqrtf)
  if (lane == 0) rstd[n] = r;
  for (int c = lane; c < d; c += 32) {
    const float h = (xr[c] - mean) * r;
    xhat[n * d + c] = h;
    y[n * d + c] = h * gamma[c] + beta[c];
  }
}

// dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat ⊙ xhat)), dxhat = dy ⊙ gamma; also dy ⊙ xhat.
__global__ void layernorm_rows_backward(const float* __restrict__ dy, const float* __restrict__ gamma,
                                        const float* __restrict__ xhat, const float* __restrict__ rstd,
                                        std::int64_t N, int d, float* __restrict__ dy_xhat, float* __restrict__ dx) {
  const std::int64_t n = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (n >= N) return;
  const int lane = threadIdx.x;
  const float* dyr = dy + n * d;
  const float* hr = xhat + n * d;
  // dxhat = dy * gamma is rounded once (__fmul_rn: never fused into the next add), as on the CPU,
  // so that dxhat - mean(dxhat) cancels exactly where it does there (d = 1: dx = 0 exactly rather
  // than the product's rounding error times rstd ~ 300).
  float s1 = 0.f, s2 = 0.f;
  for (int c = lane; c < d; c += 32) {
    const float g = __fmul_rn(dyr[c], gamma[c]);
    s1 += g;
    s2 += g * hr[c];
    dy_xhat[n * d + c] = dyr[c] * hr[c];
  }
  const float m1 = device::warp_sum(s1) / float(d), m2 = device::warp_sum(s2) / float(d);
  const float r = rstd[n];
  for (int c = lane; c < d; c += 32) dx[n * d + c] = r * (__fmul_rn(dyr[c], gamma[c]) - m1 - hr[c] * m2);
}

void require_row(const DeviceMatrix& m, Index d, const char* name) {
  if (m.rows() != 1 || m.cols() != d)
    throw std::invalid_argument(std::string(name) + ": expected [1, " + std::to_string(d) + "], got [" +
                                std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "]");
}

}  // namespace

void layernorm_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& gamma, const DeviceMatrix& beta,
                       LayerNormCache& cache, DeviceMatrix& y) {
  const Index N = x.rows(), d = x.cols();
  require_row(gamma, d, "gamma");
  require_row(beta, d, "beta");
  cache.xhat.resize(N, d);
  cache.rstd.resize(N, 1);
  y.resize(N, d);
  if (N == 0) return;
  const unsigned blocks = unsigned((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  layernorm_rows<<<blocks, dim3(32, kWarpsPerBlock), 0, ctx.stream()>>>(
      x.data(), gamma.data(), beta.data(), N, int(d), cache.xhat.data(), cache.rstd.data(), y.data());
  check_launch("layernorm_rows");
}

void layernorm_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& gamma, LayerNormCache& cache,
                        DeviceMatrix& dgamma, DeviceMatrix& dbeta, DeviceMatrix& dx) {
  const Index N = cache.xhat.rows(), d = cache.xhat.cols();
  if (dy.rows() != N || dy.cols() != d)
    throw std::invalid_argument("dy: expected the forward's shape [" + std::to_string(N) + ", " + std::to_string(d) +
                                "], got [" + std::to_string(dy.rows()) + ", " + std::to_string(dy.cols()) + "]");
  require_row(gamma, d, "gamma");
  require_row(dgamma, d, "dgamma");
  require_row(dbeta, d, "dbeta");
  cache.dy_xhat.resize(N, d);
  dx.resize(N, d);
  if (N == 0) return;
  const unsigned blocks = unsigned((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  layernorm_rows_backward<<<blocks, dim3(32, kWarpsPerBlock), 0, ctx.stream()>>>(
      dy.data(), gamma.data(), cache.xhat.data(), cache.rstd.data(), N, int(d), cache.dy_xhat.data(), dx.data());
  check_launch("layernorm_rows_backward");
  column_sum(ctx, cache.dy_xhat, dgamma, true);
  column_sum(ctx, dy, dbeta, true);
}

}  // namespace loglinear::cuda::nn
