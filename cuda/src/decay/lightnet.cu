// lightnet decay (SPEC.md §14.2, LightNet via xmixers) on the GPU: per sequence and head
// z_{-1} = 0, z_t = logaddexp(z_{t-1}, u_t), g_t = -softplus(u_t - z_{t-1}); no parameters. GPU twin
// of reference/loglinear/decay/lightnet.cpp. One thread per (sequence, head) runs the forward scan
// over t and the O(T) reverse recurrence of the backward, in the CPU twin's order (so both round
// alike); threads of consecutive heads read consecutive addresses. O(N H) work, O(T) depth.
#include <loglinear/cuda/decay/decay.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::decay {
namespace {

// Thread s = b*H + h scans rows n = b*T + t, t = 0..T-1, of column h.
__global__ void lightnet_forward(const float* __restrict__ u, std::int64_t B, std::int64_t T, std::int64_t H,
                                 float* __restrict__ g_cache, float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(s, B * H) {
    const std::int64_t b = s / H, h = s % H;
    float z = 0.f;
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t i = (b * T + t) * H + h;
      const float y = -device::softplus(u[i] - z);
      g_cache[i] = y;
      g[i] = y;
      z -= y;
    }
  }
}

// forward: g_t = z_{t-1} - z_t, so dL/dz_t = Z_t = dg_{t+1} - dg_t + a_{t+1} Z_{t+1}
// (dz_{t+1}/dz_t = a_{t+1}), reverse with Z_T = 0; dz_t/du_t = exp(u_t - z_t) = 1 - a_t.
__global__ void lightnet_backward(const float* __restrict__ dg, const float* __restrict__ g, std::int64_t B,
                                  std::int64_t T, std::int64_t H, float* __restrict__ du) {
  LOGLINEAR_GRID_LOOP(s, B * H) {
    const std::int64_t b = s / H, h = s % H;
    float Z = 0.f, dg_next = 0.f, a_next = 0.f;
    for (std::int64_t t = T - 1; t >= 0; --t) {
      const std::int64_t i = (b * T + t) * H + h;
      Z = dg_next - dg[i] + a_next * Z;
      du[i] = -expm1f(g[i]) * Z;
      dg_next = dg[i];
      a_next = expf(g[i]);
    }
  }
}

class Lightnet final : public Decay {
 public:
  Lightnet(::loglinear::decay::Decay<float>& cpu, Context& ctx) : Decay(cpu.options().heads) {
    detail::twin_params(cpu, "lightnet", {}, ctx);  // checks the key and that there are no parameters
  }
  std::string name() const override { return "lightnet"; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    B_ = B;
    const Index T = u.rows() / B;
    g_.resize(u.rows(), H_);
    g.resize(u.rows(), H_);
    lightnet_forward<<<blocks_for(B * H_), kThreads, 0, ctx.stream()>>>(u.data(), B, T, H_, g_.data(), g.data());
    check_launch("lightnet_forward");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    const Index T = dg.rows() / B_;
    du.resize(dg.rows(), H_);
    lightnet_backward<<<blocks_for(B_ * H_), kThreads, 0, ctx.stream()>>>(dg.data(), g_.data(), B_, T, H_, du.data());
    check_launch("lightnet_backward");
  }

 private:
  Index B_ = 1;
  DeviceMatrix g_;  // cached g
};

}  // namespace

std::unique_ptr<Decay> make_lightnet(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<Lightnet>(cpu, ctx);
}

}  // namespace loglinear::cuda::decay
