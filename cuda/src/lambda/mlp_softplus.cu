// mlp_softplus (SPEC.md §7.2, adaptive memory decay) on the GPU: lam = softplus(W2 GELU(W1 dl +
// b1) + b2). GPU twin of reference/loglinear/lambda/mlp_softplus.cpp; the MLP is mlp.cu, this file
// the output map, one thread per element. O(N H L) on top of the MLP.
#include <loglinear/cuda/core/activations.hpp>

#include "mlp.cuh"

namespace loglinear::cuda::lambda {
namespace {

class MlpSoftplus final : public detail::MlpLevelWeights {
 public:
  MlpSoftplus(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx)
      : detail::MlpLevelWeights(cpu, "mlp_softplus", ctx) {}
  std::string name() const override { return "mlp_softplus"; }

 protected:
  void output(Context& ctx, const float* pre, Index rows, float* lam) override {
    cuda::softplus_forward(ctx, pre, rows * L_, lam);
  }
  void output_backward(Context& ctx, const float* pre, const float* dlam, Index rows, float* dpre) override {
    // forward: lam = softplus(pre), hence dpre = dlam ⊙ sigmoid(pre).
    cuda::softplus_backward(ctx, pre, dlam, rows * L_, dpre);
  }
};

}  // namespace

std::unique_ptr<LevelWeights> make_mlp_softplus(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx) {
  return std::make_unique<MlpSoftplus>(cpu, ctx);
}

}  // namespace loglinear::cuda::lambda
