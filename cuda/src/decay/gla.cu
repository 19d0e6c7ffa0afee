// gla decay (SPEC.md §14.2, xmixers' form with the temperature inside the sigmoid) on the GPU:
// g = log sigmoid(u / tau), tau from the CPU twin's options (float(opt.tau), as the CPU stores
// it). GPU twin of reference/loglinear/decay/gla.cpp. No parameters; one thread per element. O(N H).
#include <loglinear/cuda/decay/decay.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

#include <stdexcept>

namespace loglinear::cuda::decay {
namespace {

// log sigmoid as -softplus(-x): never -inf.
__global__ void gla_forward(const float* __restrict__ u, float tau, std::int64_t n, float* __restrict__ g_cache,
                            float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float y = device::log_sigmoid(u[i] / tau);
    g_cache[i] = y;
    g[i] = y;
  }
}

// forward: g = log sigmoid(u / tau), hence dg/du = (1 - sigmoid(u / tau)) / tau = -expm1(g) / tau.
__global__ void gla_backward(const float* __restrict__ dg, const float* __restrict__ g, float tau, std::int64_t n,
                             float* __restrict__ du) {
  LOGLINEAR_GRID_LOOP(i, n) du[i] = dg[i] * (-expm1f(g[i]) / tau);
}

class Gla final : public Decay {
 public:
  Gla(::loglinear::decay::Decay<float>& cpu, Context& ctx) : Decay(cpu.options().heads), tau_(float(cpu.options().tau)) {
    detail::twin_params(cpu, "gla", {}, ctx);  // checks the key and that there are no parameters
    if (!(tau_ > 0)) throw std::invalid_argument("tau: expected > 0, got " + std::to_string(cpu.options().tau));
  }
  std::string name() const override { return "gla"; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    g_.resize(u.rows(), H_);
    g.resize(u.rows(), H_);
    gla_forward<<<blocks_for(u.size()), kThreads, 0, ctx.stream()>>>(u.data(), tau_, u.size(), g_.data(), g.data());
    check_launch("gla_forward");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    du.resize(dg.rows(), H_);
    gla_backward<<<blocks_for(dg.size()), kThreads, 0, ctx.stream()>>>(dg.data(), g_.data(), tau_, dg.size(), du.data());
    check_launch("gla_backward");
  }

 private:
  float tau_;
  DeviceMatrix g_;  // cached g
};

}  // namespace

std::unique_ptr<Decay> make_gla(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<Gla>(cpu, ctx);
}

}  // namespace loglinear::cuda::decay
