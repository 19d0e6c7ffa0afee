// simple_decay (SPEC.md §14.2, the study's own "SD-p", code `hgrn3`) on the GPU:
// g = log sigmoid(u + Delta), Delta [1, H] trainable. GPU twin of
// reference/loglinear/decay/simple_decay.cpp. One thread per element; dDelta is the deterministic
// column sum of du. O(N H).
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/decay/decay.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::decay {
namespace {

__global__ void simple_decay_forward(const float* __restrict__ u, const float* __restrict__ Delta, std::int64_t n,
                                     std::int64_t H, float* __restrict__ g_cache, float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float y = device::log_sigmoid(u[i] + Delta[i % H]);
    g_cache[i] = y;
    g[i] = y;
  }
}

// forward: g = log sigmoid(u + Delta), hence dg/du = dg/dDelta = 1 - a = -expm1(g).
__global__ void simple_decay_backward(const float* __restrict__ dg, const float* __restrict__ g, std::int64_t n,
                                      float* __restrict__ du) {
  LOGLINEAR_GRID_LOOP(i, n) du[i] = dg[i] * -expm1f(g[i]);
}

class SimpleDecay final : public Decay {
 public:
  SimpleDecay(::loglinear::decay::Decay<float>& cpu, Context& ctx)
      : Decay(cpu.options().heads), p_(detail::twin_params(cpu, "simple_decay", {"Delta"}, ctx)) {}
  std::string name() const override { return "simple_decay"; }
  std::vector<DeviceParam*> params() override { return {&p_[0]}; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    g_.resize(u.rows(), H_);
    g.resize(u.rows(), H_);
    simple_decay_forward<<<blocks_for(u.size()), kThreads, 0, ctx.stream()>>>(u.data(), p_[0].value.data(), u.size(),
                                                                             H_, g_.data(), g.data());
    check_launch("simple_decay_forward");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    du.resize(dg.rows(), H_);
    simple_decay_backward<<<blocks_for(dg.size()), kThreads, 0, ctx.stream()>>>(dg.data(), g_.data(), dg.size(),
                                                                               du.data());
    check_launch("simple_decay_backward");
    column_sum(ctx, du, p_[0].grad, /*accumulate=*/true);
  }

 private:
  std::vector<DeviceParam> p_;  // Delta [1, H]
  DeviceMatrix g_;              // cached g
};

}  // namespace

std::unique_ptr<Decay> make_simple_decay(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<SimpleDecay>(cpu, ctx);
}

}  // namespace loglinear::cuda::decay
