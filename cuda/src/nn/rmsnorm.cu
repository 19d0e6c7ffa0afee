// RMSNorm and gated RMSNorm on the GPU (loglinear/cuda/nn/rmsnorm.hpp). Group gr of row n is the
// contiguous segment s = n * groups + gr of length gs = d / groups, so the kernels run one warp per
// segment of the flat [N groups, gs] view, and rstd [N, groups] is indexed by s directly. The
// gated forms are the same kernels with the gate x ⊙ SiLU(z) computed on the fly (forward) and its
// backward folded into the last pass, in the CPU twin's order of operations.
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/nn/rmsnorm.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "../core/warp.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

constexpr int kWarpsPerBlock = 8;

std::string shape(const DeviceMatrix& m) { return "[" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "]"; }

void require_row(const DeviceMatrix& m, Index d, const char* name) {
  if (m.rows() != 1 || m.cols() != d)
    throw std::invalid_argument(std::string(name) + ": expected [1, " + std::to_string(d) + "], got " + shape(m));
}

void require_groups(Index groups, Index d) {
  if (groups < 1 || d % groups != 0)
    throw std::invalid_argument("groups: expected a divisor of d = " + std::to_string(d) + ", got " +
                                std::to_string(groups));
}

void require_forward_shape(const DeviceMatrix& dy, const DeviceMatrix& xhat) {
  if (dy.rows() != xhat.rows() || dy.cols() != xhat.cols())
    throw std::invalid_argument("dy: expected the forward's shape " + shape(xhat) + ", got " + shape(dy));
}

unsigned blocks_for_segments(std::int64_t segs) { return unsigned((segs + kWarpsPerBlock - 1) / kWarpsPerBlock); }

// One warp per segment s: v = x (or x ⊙ SiLU(z)), r = 1 / sqrt(mean(v^2) + eps), xhat = v r,
// y = xhat w. The gated form parks v in xhat between the two passes (each lane re-reads only the
// elements it wrote).
template <bool kGated>
__global__ void rmsnorm_segments(const float* __restrict__ x, const float* __restrict__ z,
                                 const float* __restrict__ w, std::int64_t segs, int gs, int groups, float eps,
                                 float* __restrict__ xhat, float* __restrict__ rstd, float* __restrict__ y) {
  const std::int64_t s = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (s >= segs) return;  // uniform across the warp: threadIdx.y is the warp's index
  const int lane = threadIdx.x;
  const std::int64_t base = s * gs;
  const float* ws = w + std::int64_t(s % groups) * gs;
  float ss = 0.f;
  for (int c = lane; c < gs; c += 32) {
    float v = x[base + c];
    if constexpr (kGated) {
      v = v * device::silu(z[base + c]);
      xhat[base + c] = v;
    }
    ss += v * v;
  }
  const float r = 1.f / sqrtf(device::warp_sum(ss) / float(gs) + eps);
  if (lane == 0) rstd[s] = r;
  for (int c = lane; c < gs; c += 32) {
    const float v = kGated ? xhat[base + c] : x[base + c];
    const float h = v * r;
    xhat[base + c] = h;
    y[base + c] = h * ws[c];
  }
}

// One warp per segment: m = mean(dy w xhat), dgated = r (dy w - m xhat), and dy ⊙ xhat for dw.
// Plain: dx (+)= dgated. Gated: dx = dgated SiLU(z), dz = (dgated x) SiLU'(z).
template <bool kGated>
__global__ void rmsnorm_segments_backward(const float* __restrict__ dy, const float* __restrict__ w,
                                          const float* __restrict__ xhat, const float* __restrict__ rstd,
                                          const float* __restrict__ x, const float* __restrict__ z, std::int64_t segs,
                                          int gs, int groups, bool accumulate, float* __restrict__ dy_xhat,
                                          float* __restrict__ dx, float* __restrict__ dz) {
  const std::int64_t s = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (s >= segs) return;
  const int lane = threadIdx.x;
  const std::int64_t base = s * gs;
  const float* ws = w + std::int64_t(s % groups) * gs;
  float acc = 0.f;
  for (int c = lane; c < gs; c += 32) {
    const float g = dy[base + c], h = xhat[base + c];
    acc += (g * ws[c]) * h;
    dy_xhat[base + c] = g * h;
  }
  const float m = device::warp_sum(acc) / float(gs);
  const float r = rstd[s];
  for (int c = lane; c < gs; c += 32) {
    const float dg = r * (dy[base + c] * ws[c] - m * xhat[base + c]);
    if constexpr (kGated) {
      const float zc = z[base + c];
      dx[base + c] = dg * device::silu(zc);
      dz[base + c] = (dg * x[base + c]) * device::silu_grad(zc);
    } else {
      dx[base + c] = accumulate ? dx[base + c] + dg : dg;
    }
  }
}

// The forward of both layers: checks, cache and output shapes, one launch.
template <bool kGated>
void forward(Context& ctx, const DeviceMatrix& x, const float* z, const DeviceMatrix& w, RmsNormCache& cache,
             DeviceMatrix& y, Index groups, float eps) {
  const Index N = x.rows(), d = x.cols();
  require_row(w, d, "w");
  require_groups(groups, d);
  cache.xhat.resize(N, d);
  cache.rstd.resize(N, groups);
  y.resize(N, d);
  if (N == 0 || d == 0) return;
  const std::int64_t segs = std::int64_t(N) * groups;
  rmsnorm_segments<kGated><<<blocks_for_segments(segs), dim3(32, kWarpsPerBlock), 0, ctx.stream()>>>(
      x.data(), z, w.data(), segs, int(d / groups), int(groups), eps, cache.xhat.data(), cache.rstd.data(), y.data());
  check_launch(kGated ? "rmsnorm_segments<gated>" : "rmsnorm_segments");
}

// The backward of both layers after the shape checks: one launch, then dw += column sums.
template <bool kGated>
void backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& w, RmsNormCache& cache, const float* x,
              const float* z, DeviceMatrix& dw, float* dx, float* dz, bool accumulate) {
  const Index N = cache.xhat.rows(), d = cache.xhat.cols();
  cache.dy_xhat.resize(N, d);
  if (N == 0 || d == 0) return;
  const Index groups = cache.rstd.cols();
  const std::int64_t segs = std::int64_t(N) * groups;
  rmsnorm_segments_backward<kGated><<<blocks_for_segments(segs), dim3(32, kWarpsPerBlock), 0, ctx.stream()>>>(
      dy.data(), w.data(), cache.xhat.data(), cache.rstd.data(), x, z, segs, int(d / groups), int(groups), accumulate,
      cache.dy_xhat.data(), dx, dz);
  check_launch(kGated ? "rmsnorm_segments_backward<gated>" : "rmsnorm_segments_backward");
  column_sum(ctx, cache.dy_xhat, dw, true);
}

void copy_into(Context& ctx, const DeviceMatrix& from, DeviceMatrix& to) {
  if (&from != &to) copy(ctx, from, to);
}

}  // namespace

void rmsnorm_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& w, RmsNormCache& cache,
                     DeviceMatrix& y, Index groups, float eps) {
  forward<false>(ctx, x, nullptr, w, cache, y, groups, eps);
}

void rmsnorm_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& w, RmsNormCache& cache,
                      DeviceMatrix& dw, DeviceMatrix& dx, bool accumulate_dx) {
  require_forward_shape(dy, cache.xhat);
  const Index N = cache.xhat.rows(), d = cache.xhat.cols();
  require_row(w, d, "w");
  require_row(dw, d, "dw");
  if (accumulate_dx) {
    if (dx.rows() != N || dx.cols() != d)
      throw std::invalid_argument("dx: expected the forward's shape " + shape(cache.xhat) + " to accumulate into, got " +
                                  shape(dx));
  } else {
    dx.resize(N, d);
  }
  backward<false>(ctx, dy, w, cache, nullptr, nullptr, dw, dx.data(), nullptr, accumulate_dx);
}

void gated_rmsnorm_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& z, const DeviceMatrix& w,
                           GatedRmsNormCache& cache, DeviceMatrix& y, Index groups, float eps) {
  if (z.rows() != x.rows() || z.cols() != x.cols())
    throw std::invalid_argument("z: expected the shape of x " + shape(x) + ", got " + shape(z));
  forward<true>(ctx, x, z.data(), w, cache.norm, y, groups, eps);
  copy_into(ctx, x, cache.x);
  copy_into(ctx, z, cache.z);
}

void gated_rmsnorm_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& w, GatedRmsNormCache& cache,
                            DeviceMatrix& dw, DeviceMatrix& dx, DeviceMatrix& dz) {
  require_forward_shape(dy, cache.norm.xhat);
  const Index N = cache.norm.xhat.rows(), d = cache.norm.xhat.cols();
  require_row(w, d, "w");
  require_row(dw, d, "dw");
  dx.resize(N, d);
  dz.resize(N, d);
  backward<true>(ctx, dy, w, cache.norm, cache.x.data(), cache.z.data(), dw, dx.data(), dz.data(), false);
}

}  // namespace loglinear::cuda::nn
