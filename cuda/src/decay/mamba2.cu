// mamba2 decay (SPEC.md §14.2, §8) on the GPU: g = -exp(A_log) softplus(u + dt_bias). GPU twin of
// reference/loglinear/decay/mamba2.cpp. One thread per element each way; d(dt_bias) and d(A_log)
// are deterministic column sums of du and dg ⊙ g. O(N H).
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/decay/decay.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::decay {
namespace {

__global__ void mamba2_forward(const float* __restrict__ u, const float* __restrict__ dt_bias,
                               const float* __restrict__ A_log, std::int64_t n, std::int64_t H,
                               float* __restrict__ pre, float* __restrict__ g_cache, float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const std::int64_t h = i % H;
    const float p = u[i] + dt_bias[h];
    const float y = -expf(A_log[h]) * device::softplus(p);
    pre[i] = p;
    g_cache[i] = y;
    g[i] = y;
  }
}

// forward: g = -exp(A_log) sp(pre), pre = u + dt_bias; sp' = sigmoid, and dg/dA_log = g.
__global__ void mamba2_backward(const float* __restrict__ dg, const float* __restrict__ pre,
                                const float* __restrict__ g, const float* __restrict__ A_log, std::int64_t n,
                                std::int64_t H, float* __restrict__ du, float* __restrict__ dg_g) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const std::int64_t h = i % H;
    du[i] = -dg[i] * expf(A_log[h]) * device::sigmoid(pre[i]);
    dg_g[i] = dg[i] * g[i];
  }
}

class Mamba2 final : public Decay {
 public:
  Mamba2(::loglinear::decay::Decay<float>& cpu, Context& ctx)
      : Decay(cpu.options().heads), p_(detail::twin_params(cpu, "mamba2", {"dt_bias", "A_log"}, ctx)) {}
  std::string name() const override { return "mamba2"; }
  std::vector<DeviceParam*> params() override { return {&p_[0], &p_[1]}; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    pre_.resize(u.rows(), H_);
    g_.resize(u.rows(), H_);
    g.resize(u.rows(), H_);
    mamba2_forward<<<blocks_for(u.size()), kThreads, 0, ctx.stream()>>>(
        u.data(), p_[0].value.data(), p_[1].value.data(), u.size(), H_, pre_.data(), g_.data(), g.data());
    check_launch("mamba2_forward");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    du.resize(dg.rows(), H_);
    dg_g_.resize(dg.rows(), H_);
    mamba2_backward<<<blocks_for(dg.size()), kThreads, 0, ctx.stream()>>>(
        dg.data(), pre_.data(), g_.data(), p_[1].value.data(), dg.size(), H_, du.data(), dg_g_.data());
    check_launch("mamba2_backward");
    column_sum(ctx, du, p_[0].grad, /*accumulate=*/true);    // d(dt_bias) = sum over rows of du
    column_sum(ctx, dg_g_, p_[1].grad, /*accumulate=*/true);  // d(A_log) = sum over rows of dg ⊙ g
  }

 private:
  std::vector<DeviceParam> p_;  // dt_bias, A_log
  DeviceMatrix pre_, g_;        // cached u + dt_bias and g
  DeviceMatrix dg_g_;           // backward's dg ⊙ g
};

}  // namespace

std::unique_ptr<Decay> make_mamba2(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<Mamba2>(cpu, ctx);
}

}  // namespace loglinear::cuda::decay
