// AdamW on the GPU (loglinear/cuda/train/adamw.hpp): one multi-tensor launch per step, each
// element updated exactly as in reference/loglinear/train/adamw.cpp.
#include <loglinear/cuda/train/adamw.hpp>

#include "param_table.cuh"

#include <cmath>
#include <stdexcept>
#include <string>

namespace loglinear::cuda::train {
namespace {

struct AdamWScalars {
  float b1, one_minus_b1, b2, one_minus_b2, lr, c1, c2, eps, decay;  // decay = 1 - lr * wd
  int use_decay;
};

__global__ void adamw_update(const ParamSlot* __restrict__ table, AdamWScalars s) {
  const ParamSlot p = table[blockIdx.y];
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const float g = p.grad[i];
    const float m = s.b1 * p.m[i] + s.one_minus_b1 * g;
    const float v = s.b2 * p.v[i] + s.one_minus_b2 * (g * g);
    p.m[i] = m;
    p.v[i] = v;
    float w = p.value[i];
    if (s.use_decay && p.weight_decay) w *= s.decay;  // decoupled decay before the Adam step
    p.value[i] = w - s.lr * (m / s.c1) / (sqrtf(v / s.c2) + s.eps);
  }
}

}  // namespace

struct AdamW::Impl {
  std::vector<DeviceParam*> params;
  std::vector<DeviceMatrix> m, v;
  DeviceBuffer<ParamSlot> table;
  double b1, b2, eps, wd;
  long t = 0;
};

AdamW::AdamW(std::vector<DeviceParam*> params, double beta1, double beta2, double eps, double weight_decay,
             Context& ctx)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.params = std::move(params);
  s.b1 = beta1;
  s.b2 = beta2;
  s.eps = eps;
  s.wd = weight_decay;
  std::vector<float*> mp, vp;
  for (DeviceParam* p : s.params) {
    s.m.emplace_back(p->value.rows(), p->value.cols());
    s.v.emplace_back(p->value.rows(), p->value.cols());
    s.m.back().set_zero(ctx.stream());
    s.v.back().set_zero(ctx.stream());
  }
  for (size_t i = 0; i < s.params.size(); ++i) {
    mp.push_back(s.m[i].data());
    vp.push_back(s.v[i].data());
  }
  upload_table(s.table, s.params, mp, vp, ctx.stream());
}
AdamW::~AdamW() = default;
AdamW::AdamW(AdamW&&) noexcept = default;
AdamW& AdamW::operator=(AdamW&&) noexcept = default;

void AdamW::step(Context& ctx, double lr) {
  Impl& s = *impl_;
  ++s.t;
  if (s.params.empty()) return;
  // The scalars as the CPU twin forms them: Scalar(b1), Scalar(1 - b1), ..., c1 = 1 - b1^t in double.
  const double c1 = 1 - std::pow(s.b1, double(s.t)), c2 = 1 - std::pow(s.b2, double(s.t));
  const AdamWScalars k{float(s.b1), float(1 - s.b1), float(s.b2), float(1 - s.b2), float(lr), float(c1),
                       float(c2),   float(s.eps),    float(1 - lr * s.wd), s.wd > 0 ? 1 : 0};
  adamw_update<<<dim3(kSlices, unsigned(s.params.size())), kThreads, 0, ctx.stream()>>>(s.table.data(), k);
  check_launch("adamw_update");
}

long AdamW::steps() const { return impl_->t; }
void AdamW::set_steps(long t) { impl_->t = t; }

namespace {
void check_which(int which) {
  if (which != 0 && which != 1)
    throw std::invalid_argument("which: expected 0 (first moments) or 1 (second moments), got " + std::to_string(which));
}
}  // namespace

std::vector<RowMatrix<float>> AdamW::moments(Context& ctx, int which) const {
  check_which(which);
  std::vector<RowMatrix<float>> out;
  for (const DeviceMatrix& d : which == 0 ? impl_->m : impl_->v) out.push_back(d.download(ctx.stream()));
  return out;
}

void AdamW::set_moments(Context& ctx, int which, const std::vector<RowMatrix<float>>& values) {
  check_which(which);
  auto& dst = which == 0 ? impl_->m : impl_->v;
  if (values.size() != dst.size())
    throw std::invalid_argument("moments: expected " + std::to_string(dst.size()) + " matrices, got " +
                                std::to_string(values.size()));
  for (size_t i = 0; i < dst.size(); ++i) {
    if (values[i].rows() != dst[i].rows() || values[i].cols() != dst[i].cols())
      throw std::invalid_argument("moments: entry " + std::to_string(i) + " (" + impl_->params[i]->name +
                                  ") expected [" + std::to_string(dst[i].rows()) + ", " + std::to_string(dst[i].cols()) +
                                  "], got [" + std::to_string(values[i].rows()) + ", " + std::to_string(values[i].cols()) + "]");
    dst[i].upload(values[i], ctx.stream());  // same shape: the buffer (and the table's pointer) stays
  }
  ctx.synchronize();
}

}  // namespace loglinear::cuda::train
