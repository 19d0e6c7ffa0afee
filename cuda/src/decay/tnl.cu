// tnl decay (SPEC.md §14.2, TransNormerLLM via xmixers) on the GPU: static per-head rates that fall
// with depth, g_h = decay::detail::tnl_rate(h, H, layer, layers) from the CPU twin's options (the
// CPU's own formula, rounded to float as the CPU twin stores it); nothing to learn, du = 0. GPU twin
// of reference/loglinear/decay/tnl.cpp. O(N H) to broadcast.
#include <loglinear/cuda/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::decay {
namespace {

__global__ void broadcast_row(const float* __restrict__ row, std::int64_t n, std::int64_t H, float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, n) g[i] = row[i % H];
}

class Tnl final : public Decay {
 public:
  Tnl(::loglinear::decay::Decay<float>& cpu, Context& ctx) : Decay(cpu.options().heads) {
    detail::twin_params(cpu, "tnl", {}, ctx);  // checks the key and that there are no parameters
    const ::loglinear::decay::DecayOptions& o = cpu.options();
    RowMatrix<float> rate(1, H_);
    for (Index h = 0; h < H_; ++h) rate(0, h) = float(::loglinear::decay::detail::tnl_rate(h, H_, o.layer, o.num_layers));
    rate_.upload(rate, ctx.stream());
    ctx.synchronize();  // `rate` is freed on return
  }
  std::string name() const override { return "tnl"; }
  bool data_dependent() const override { return false; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    rows_ = u.rows();
    g.resize(rows_, H_);
    broadcast_row<<<blocks_for(g.size()), kThreads, 0, ctx.stream()>>>(rate_.data(), g.size(), H_, g.data());
    check_launch("broadcast_row");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, rows_);
    // g does not depend on u and has no parameters.
    du.resize(dg.rows(), H_);
    du.set_zero(ctx.stream());
  }

 private:
  Index rows_ = 0;
  DeviceMatrix rate_;  // [1, H]
};

}  // namespace

std::unique_ptr<Decay> make_tnl(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<Tnl>(cpu, ctx);
}

}  // namespace loglinear::cuda::decay
