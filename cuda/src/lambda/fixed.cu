// fixed (SPEC.md §7.1, the original log-linear Mamba-2) on the GPU: lam = softplus(Lp[h] ⊙ dl),
// Lp [H, L]. GPU twin of reference/loglinear/lambda/fixed.cpp. One thread per element each way;
// dLp is the column sum of dpre ⊙ dl over the [N, H*L] view, whose column h*L + l is Lp's entry
// (h, l), so the sum over a head's rows is a plain deterministic column sum. O(N H L) both ways.
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/lambda/lambda.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

namespace loglinear::cuda::lambda {
namespace {

// Element i of the [N*H, L] rows is Lp's entry i % (H*L) (row r = i / L has head r % H).
__global__ void fixed_forward(const float* __restrict__ dl, const float* __restrict__ Lp, std::int64_t n,
                              std::int64_t HL, float* __restrict__ dl_cache, float* __restrict__ pre,
                              float* __restrict__ lam) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float x = dl[i];
    const float p = x * Lp[i % HL];
    dl_cache[i] = x;
    pre[i] = p;
    lam[i] = device::softplus(p);
  }
}

// forward: lam = softplus(pre), pre = Lp[h] ⊙ dl; softplus' = sigmoid.
__global__ void fixed_backward(const float* __restrict__ dlam, const float* __restrict__ pre,
                               const float* __restrict__ dl, const float* __restrict__ Lp, std::int64_t n,
                               std::int64_t HL, float* __restrict__ dpre_dl, float* __restrict__ ddl) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float dpre = dlam[i] * device::sigmoid(pre[i]);
    dpre_dl[i] = dpre * dl[i];
    ddl[i] = dpre * Lp[i % HL];
  }
}

class Fixed final : public LevelWeights {
 public:
  Fixed(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx)
      : LevelWeights(cpu.heads(), cpu.levels()),
        p_(detail::twin_params(cpu, "fixed", {{"Lp", cpu.heads(), cpu.levels()}}, ctx)) {}
  std::string name() const override { return "fixed"; }
  std::vector<DeviceParam*> params() override { return {&p_[0]}; }

 protected:
  void forward_rows(Context& ctx, const float* dl, Index rows, float* lam) override {
    dl_.resize(rows, L_);
    pre_.resize(rows, L_);
    fixed_forward<<<blocks_for(rows * L_), kThreads, 0, ctx.stream()>>>(dl, p_[0].value.data(), rows * L_, H_ * L_,
                                                                      dl_.data(), pre_.data(), lam);
    check_launch("fixed_forward");
  }
  void backward_rows(Context& ctx, const float* dlam, Index rows, float* ddl) override {
    prod_.resize(rows, L_);
    fixed_backward<<<blocks_for(rows * L_), kThreads, 0, ctx.stream()>>>(dlam, pre_.data(), dl_.data(),
                                                                       p_[0].value.data(), rows * L_, H_ * L_,
                                                                       prod_.data(), ddl);
    check_launch("fixed_backward");
    // dLp[h, l] += sum over tokens of (dpre ⊙ dl)[token, h*L + l]: the [N, H*L] view's column sums.
    column_sum(ctx, prod_.data(), rows / H_, H_ * L_, p_[0].grad.data(), /*accumulate=*/true);
  }

 private:
  std::vector<DeviceParam> p_;       // Lp [H, L]
  DeviceMatrix dl_, pre_;            // cache of the last forward, [N*H, L]
  DeviceMatrix prod_;                // backward's dpre ⊙ dl, [N*H, L]
};

}  // namespace

std::unique_ptr<LevelWeights> make_fixed(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx) {
  return std::make_unique<Fixed>(cpu, ctx);
}

}  // namespace loglinear::cuda::lambda
