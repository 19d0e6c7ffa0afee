// constant (SPEC.md §7) on the GPU: lam = softplus(c[h]), one learned weight per head and level,
// the same for every token; d(dl) is exactly zero. GPU twin of reference/loglinear/lambda/constant.cpp.
// One thread per element; dc is the deterministic column sum of dlam ⊙ sigmoid(c) over the
// [N, H*L] view (column h*L + l is c's entry (h, l)). O(N H L) both ways.
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/lambda/lambda.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::lambda {
namespace {

// Element i of the [N*H, L] rows belongs to c's entry i % (H*L).
__global__ void constant_forward(const float* __restrict__ c, std::int64_t n, std::int64_t HL, float* __restrict__ lam) {
  LOGLINEAR_GRID_LOOP(i, n) lam[i] = device::softplus(c[i % HL]);
}

// forward: lam = softplus(c[h]) for every token, hence dc[h] += sum over its rows of dlam ⊙ sigmoid(c[h]).
__global__ void constant_backward(const float* __restrict__ dlam, const float* __restrict__ c, std::int64_t n,
                                  std::int64_t HL, float* __restrict__ dlam_slope) {
  LOGLINEAR_GRID_LOOP(i, n) dlam_slope[i] = dlam[i] * device::sigmoid(c[i % HL]);
}

class Constant final : public LevelWeights {
 public:
  Constant(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx)
      : LevelWeights(cpu.heads(), cpu.levels()),
        p_(detail::twin_params(cpu, "constant", {{"c", cpu.heads(), cpu.levels()}}, ctx)) {}
  std::string name() const override { return "constant"; }
  std::vector<DeviceParam*> params() override { return {&p_[0]}; }

 protected:
  void forward_rows(Context& ctx, const float*, Index rows, float* lam) override {
    constant_forward<<<blocks_for(rows * L_), kThreads, 0, ctx.stream()>>>(p_[0].value.data(), rows * L_, H_ * L_, lam);
    check_launch("constant_forward");
  }
  void backward_rows(Context& ctx, const float* dlam, Index rows, float* ddl) override {
    prod_.resize(rows, L_);
    constant_backward<<<blocks_for(rows * L_), kThreads, 0, ctx.stream()>>>(dlam, p_[0].value.data(), rows * L_,
                                                                          H_ * L_, prod_.data());
    check_launch("constant_backward");
    column_sum(ctx, prod_.data(), rows / H_, H_ * L_, p_[0].grad.data(), /*accumulate=*/true);
    // lam does not depend on dl.
    if (rows > 0)
      check_cuda(cudaMemsetAsync(ddl, 0, std::size_t(rows * L_) * sizeof(float), ctx.stream()), "cudaMemsetAsync (ddl)");
  }

 private:
  std::vector<DeviceParam> p_;  // c [H, L]
  DeviceMatrix prod_;           // backward's dlam ⊙ sigmoid(c), [N*H, L]
};

}  // namespace

std::unique_ptr<LevelWeights> make_constant(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx) {
  return std::make_unique<Constant>(cpu, ctx);
}

}  // namespace loglinear::cuda::lambda
