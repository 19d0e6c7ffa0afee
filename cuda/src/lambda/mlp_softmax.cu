// mlp_softmax (the adaptive-decay paper's softmax ablation, SPEC.md §7.2) on the GPU: lam =
// softmax over the L levels of W2 GELU(W1 dl + b1) + b2. GPU twin of
// reference/loglinear/lambda/mlp_softmax.cpp; the MLP is mlp.cu, this file the output map. One
// thread per [token, head] row (L is small: the levels of a sequence, ~log2 T), the row maximum
// subtracted first (no overflow), every sum in order. O(N H L) on top of the MLP.
#include "../core/launch.cuh"
#include "mlp.cuh"

namespace loglinear::cuda::lambda {
namespace {

// lam_row = e / sum(e), e = exp(pre_row - max(pre_row)); written to `cache` and `lam`.
__global__ void softmax_forward(const float* __restrict__ pre, std::int64_t rows, std::int64_t L,
                                float* __restrict__ cache, float* __restrict__ lam) {
  LOGLINEAR_GRID_LOOP(r, rows) {
    const float* p = pre + r * L;
    float* c = cache + r * L;
    float m = p[0];
    for (std::int64_t l = 1; l < L; ++l) m = fmaxf(m, p[l]);
    float s = 0.f;
    for (std::int64_t l = 0; l < L; ++l) {
      c[l] = expf(p[l] - m);
      s += c[l];
    }
    for (std::int64_t l = 0; l < L; ++l) {
      c[l] /= s;
      lam[r * L + l] = c[l];
    }
  }
}

// forward: lam = softmax(pre), hence dpre = lam ⊙ (dlam - <dlam, lam>) per row.
__global__ void softmax_backward(const float* __restrict__ lam, const float* __restrict__ dlam, std::int64_t rows,
                                 std::int64_t L, float* __restrict__ dpre) {
  LOGLINEAR_GRID_LOOP(r, rows) {
    const float* y = lam + r * L;
    const float* dy = dlam + r * L;
    float dot = 0.f;
    for (std::int64_t l = 0; l < L; ++l) dot += dy[l] * y[l];
    for (std::int64_t l = 0; l < L; ++l) dpre[r * L + l] = y[l] * (dy[l] - dot);
  }
}

class MlpSoftmax final : public detail::MlpLevelWeights {
 public:
  MlpSoftmax(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx)
      : detail::MlpLevelWeights(cpu, "mlp_softmax", ctx) {}
  std::string name() const override { return "mlp_softmax"; }

 protected:
  void output(Context& ctx, const float* pre, Index rows, float* lam) override {
    lam_.resize(rows, L_);
    softmax_forward<<<blocks_for(rows), kThreads, 0, ctx.stream()>>>(pre, rows, L_, lam_.data(), lam);
    check_launch("softmax_forward");
  }
  void output_backward(Context& ctx, const float*, const float* dlam, Index rows, float* dpre) override {
    softmax_backward<<<blocks_for(rows), kThreads, 0, ctx.stream()>>>(lam_.data(), dlam, rows, L_, dpre);
    check_launch("softmax_backward");
  }

 private:
  DeviceMatrix lam_;  // cache of the last output, [N*H, L]
};

}  // namespace

std::unique_ptr<LevelWeights> make_mlp_softmax(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx) {
  return std::make_unique<MlpSoftmax>(cpu, ctx);
}

}  // namespace loglinear::cuda::lambda
