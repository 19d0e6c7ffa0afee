// Global-norm clipping on the GPU (loglinear/cuda/train/clip.hpp): (1) per parameter and slice a
// partial sum of squares, (2) one block adds the partials in order (double) and decides the scale,
// (3) every gradient is multiplied by that scale.
#include <loglinear/cuda/train/clip.hpp>

#include "param_table.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::train {
namespace {

constexpr int kThreadsPerSlice = 256;

// partial[p * kSlices + s] = sum of grad^2 over slice s of parameter p (grid (kSlices, P)).
__global__ void grad_sumsq_partials(const ParamSlot* __restrict__ table, double* __restrict__ partial) {
  __shared__ double acc[kThreadsPerSlice];
  const ParamSlot p = table[blockIdx.y];
  double s = 0;
  for (std::int64_t i = std::int64_t(blockIdx.x) * kThreadsPerSlice + threadIdx.x; i < p.n;
       i += std::int64_t(kSlices) * kThreadsPerSlice) {
    const double g = p.grad[i];
    s += g * g;
  }
  acc[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreadsPerSlice / 2; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) acc[threadIdx.x] += acc[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.y * kSlices + blockIdx.x] = acc[0];
}

// norm_scale[0] = the norm, norm_scale[1] = the factor every gradient is multiplied by.
__global__ void grad_norm_and_scale(const double* __restrict__ partial, int count, double max_norm,
                                    double* __restrict__ norm_scale) {
  double s = 0;
  for (int i = 0; i < count; ++i) s += partial[i];
  const double norm = sqrt(s);
  norm_scale[0] = norm;
  norm_scale[1] = norm > max_norm ? double(float(max_norm / (norm + 1e-6))) : 1.0;  // the CPU's Scalar(...)
}

__global__ void grad_scale(const ParamSlot* __restrict__ table, const double* __restrict__ norm_scale) {
  const double scale = norm_scale[1];
  if (scale == 1.0) return;
  const ParamSlot p = table[blockIdx.y];
  const float f = float(scale);
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n;
       i += std::int64_t(gridDim.x) * blockDim.x)
    p.grad[i] *= f;
}

}  // namespace

struct GlobalNormClip::Impl {
  std::vector<DeviceParam*> params;
  DeviceBuffer<ParamSlot> table;
  DeviceBuffer<double> partial, norm_scale;
  bool uploaded = false;
};

GlobalNormClip::GlobalNormClip(std::vector<DeviceParam*> params) : impl_(std::make_unique<Impl>()) {
  impl_->params = std::move(params);
}
GlobalNormClip::~GlobalNormClip() = default;
GlobalNormClip::GlobalNormClip(GlobalNormClip&&) noexcept = default;
GlobalNormClip& GlobalNormClip::operator=(GlobalNormClip&&) noexcept = default;

void GlobalNormClip::clip(Context& ctx, double max_norm) {
  if (!(max_norm > 0)) throw std::invalid_argument("max_norm: expected > 0, got " + std::to_string(max_norm));
  Impl& m = *impl_;
  const unsigned P = unsigned(m.params.size());
  if (!m.uploaded) {
    upload_table(m.table, m.params, {}, {}, ctx.stream());
    m.partial.resize(std::size_t(P) * kSlices + 1);
    m.norm_scale.resize(2);
    m.uploaded = true;
  }
  if (P == 0) {
    m.norm_scale.set_zero(ctx.stream());
    return;
  }
  grad_sumsq_partials<<<dim3(kSlices, P), kThreadsPerSlice, 0, ctx.stream()>>>(m.table.data(), m.partial.data());
  check_launch("grad_sumsq_partials");
  grad_norm_and_scale<<<1, 1, 0, ctx.stream()>>>(m.partial.data(), int(P) * kSlices, max_norm, m.norm_scale.data());
  check_launch("grad_norm_and_scale");
  grad_scale<<<dim3(kSlices, P), kThreads, 0, ctx.stream()>>>(m.table.data(), m.norm_scale.data());
  check_launch("grad_scale");
}

double GlobalNormClip::last_norm(Context& ctx) const {
  if (impl_->norm_scale.size() == 0) return 0;
  double host[2];
  impl_->norm_scale.download(host, ctx.stream());
  return host[0];
}

double clip_grad_norm(Context& ctx, const std::vector<DeviceParam*>& params, double max_norm) {
  GlobalNormClip clip(params);
  clip.clip(ctx, max_norm);
  return clip.last_norm(ctx);
}

}  // namespace loglinear::cuda::train
