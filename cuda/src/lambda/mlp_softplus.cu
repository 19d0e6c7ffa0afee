// mlp_softplus (SPEC.md §7.2, adaptive memory decay) on the GPU: lam = softplus(W2 GELU(W1 dl +
// b1) + b2). GPU twin of reference/loglinear/lambda/mlp_softplus.cpp; the MLP is mlp.cu, this file
// the output map, one thread per element. O(N H L) on top of the MLP.
#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "mlp.cuh"

namespace loglinear::cuda::lambda {
namespace {

__global__ void softplus_forward(const float* __restrict__ pre, std::int64_t n, float* __restrict__ lam) {
  LOGLINEAR_GRID_LOOP(i, n) lam[i] = device::softplus(pre[i]);
}

// forward: lam = softplus(pre), hence dpre = dlam ⊙ sigmoid(pre).
__global__ void softplus_backward(const float* __restrict__ pre, const float* __restrict__ dlam, std::int64_t n,
                                  float* __restrict__ dpre) {
  LOGLINEAR_GRID_LOOP(i, n) dpre[i] = dlam[i] * device::sigmoid(pre[i]);
}

class MlpSoftplus final : public detail::MlpLevelWeights {
 public:
  MlpSoftplus(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx)
      : detail::MlpLevelWeights(cpu, "mlp_softplus", ctx) {}
  std::string name() const override { return "mlp_softplus"; }

 protected:
  void output(Context& ctx, const float* pre, Index rows, float* lam) override {
    softplus_forward<<<blocks_for(rows * L_), kThreads, 0, ctx.stream()>>>(pre, rows * L_, lam);
    check_launch("softplus_forward");
  }
  void output_backward(Context& ctx, const float* pre, const float* dlam, Index rows, float* dpre) override {
    softplus_backward<<<blocks_for(rows * L_), kThreads, 0, ctx.stream()>>>(pre, dlam, rows * L_, dpre);
    check_launch("softplus_backward");
  }
};

}  // namespace

std::unique_ptr<LevelWeights> make_mlp_softplus(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx) {
  return std::make_unique<MlpSoftplus>(cpu, ctx);
}

}  // namespace loglinear::cuda::lambda
