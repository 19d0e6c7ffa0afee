// tnl_l decay (SPEC.md §14.2 "TNL-L", xmixers' learned TNL) on the GPU: one trainable log-decay
// per head, the same for every token, g_h = -softplus(theta_h); du = 0. GPU twin of
// reference/loglinear/decay/tnl_l.cpp. dtheta = -sigmoid(theta) ⊙ (deterministic column sum of dg).
// O(N H).
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/decay/decay.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::decay {
namespace {

// g[n, h] = -softplus(theta_h).
__global__ void tnl_l_forward(const float* __restrict__ theta, std::int64_t n, std::int64_t H, float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, n) g[i] = -device::softplus(theta[i % H]);
}

// forward: g[n, h] = -softplus(theta_h) for every row n, hence dtheta_h -= sigmoid(theta_h) sum_n dg[n, h].
__global__ void tnl_l_backward(const float* __restrict__ theta, const float* __restrict__ dg_sum, std::int64_t H,
                               float* __restrict__ dtheta) {
  LOGLINEAR_GRID_LOOP(h, H) dtheta[h] -= device::sigmoid(theta[h]) * dg_sum[h];
}

class TnlL final : public Decay {
 public:
  TnlL(::loglinear::decay::Decay<float>& cpu, Context& ctx)
      : Decay(cpu.options().heads), p_(detail::twin_params(cpu, "tnl_l", {"theta"}, ctx)) {}
  std::string name() const override { return "tnl_l"; }
  bool data_dependent() const override { return false; }
  std::vector<DeviceParam*> params() override { return {&p_[0]}; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    rows_ = u.rows();
    g.resize(rows_, H_);
    tnl_l_forward<<<blocks_for(g.size()), kThreads, 0, ctx.stream()>>>(p_[0].value.data(), g.size(), H_, g.data());
    check_launch("tnl_l_forward");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, rows_);
    column_sum(ctx, dg, sum_, /*accumulate=*/false);
    tnl_l_backward<<<blocks_for(H_), kThreads, 0, ctx.stream()>>>(p_[0].value.data(), sum_.data(), H_,
                                                                  p_[0].grad.data());
    check_launch("tnl_l_backward");
    // g does not depend on u.
    du.resize(dg.rows(), H_);
    du.set_zero(ctx.stream());
  }

 private:
  Index rows_ = 0;
  std::vector<DeviceParam> p_;  // theta [1, H]
  DeviceMatrix sum_;            // backward's sum over rows of dg, [1, H]
};

}  // namespace

std::unique_ptr<Decay> make_tnl_l(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<TnlL>(cpu, ctx);
}

}  // namespace loglinear::cuda::decay
