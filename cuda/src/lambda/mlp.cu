// The lambda MLP's hidden layer on the GPU, forward and backward (mlp.cuh; SPEC.md §7.2). GPU twin
// of reference/loglinear/lambda/mlp.cpp. Row-major GEMMs through nn::gemm (cuBLAS, float32,
// deterministic); bias + GELU and the GELU backward are elementwise kernels; db1 and db2 are
// deterministic column sums. O(N H L hidden) both ways.
#include <loglinear/cuda/core/activations.hpp>
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/nn/linear.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "mlp.cuh"
#include "twin.cuh"

namespace loglinear::cuda::lambda::detail {
namespace {

// a += b1 (broadcast over rows), hid = GELU(a); a and hid [rows, hidden].
__global__ void bias_gelu(float* __restrict__ a, const float* __restrict__ b, std::int64_t n, std::int64_t cols,
                          float* __restrict__ hid) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float x = a[i] + b[i % cols];
    a[i] = x;
    hid[i] = device::gelu(x);
  }
}


// hidden of the CPU twin: the rows of its first parameter W1 (0 if it has none; twin_params then
// reports the mismatch).
Index cpu_hidden(::loglinear::lambda::LevelWeights<float>& cpu) {
  const auto ps = cpu.params();
  return ps.empty() ? 0 : ps[0]->value.rows();
}

}  // namespace

MlpLevelWeights::MlpLevelWeights(::loglinear::lambda::LevelWeights<float>& cpu, const std::string& mode, Context& ctx)
    : LevelWeights(cpu.heads(), cpu.levels()), hidden_(cpu_hidden(cpu)),
      p_(twin_params(cpu, mode,
                     {{"W1", hidden_, cpu.levels()}, {"b1", 1, hidden_}, {"W2", cpu.levels(), hidden_}, {"b2", 1, cpu.levels()}},
                     ctx)) {}

void MlpLevelWeights::forward_rows(Context& ctx, const float* dl, Index rows, float* lam) {
  const DeviceParam &W1 = p_[0], &b1 = p_[1], &W2 = p_[2], &b2 = p_[3];
  dl_.resize(rows, L_);
  cuda::copy_device(ctx, dl_.data(), dl, rows * L_);
  // a = dl W1^T + b1, hid = GELU(a).
  a_.resize(rows, hidden_);
  hid_.resize(rows, hidden_);
  nn::gemm(ctx, false, true, rows, hidden_, L_, 1.f, dl_.data(), W1.value.data(), 0.f, a_.data());
  bias_gelu<<<blocks_for(a_.size()), kThreads, 0, ctx.stream()>>>(a_.data(), b1.value.data(), a_.size(), hidden_,
                                                                   hid_.data());
  check_launch("bias_gelu");
  // pre = hid W2^T + b2.
  pre_.resize(rows, L_);
  nn::gemm(ctx, false, true, rows, L_, hidden_, 1.f, hid_.data(), W2.value.data(), 0.f, pre_.data());
  add_bias(ctx, pre_.data(), b2.value.data(), rows, L_);
  output(ctx, pre_.data(), rows, lam);
}

void MlpLevelWeights::backward_rows(Context& ctx, const float* dlam, Index rows, float* ddl) {
  DeviceParam &W1 = p_[0], &b1 = p_[1], &W2 = p_[2], &b2 = p_[3];
  dpre_.resize(rows, L_);
  output_backward(ctx, pre_.data(), dlam, rows, dpre_.data());
  // forward: pre = hid W2^T + b2: dW2 [L, hidden] += dpre^T hid, db2 += sum over rows of dpre.
  nn::gemm(ctx, true, false, L_, hidden_, rows, 1.f, dpre_.data(), hid_.data(), 1.f, W2.grad.data());
  column_sum(ctx, dpre_.data(), rows, L_, b2.grad.data(), /*accumulate=*/true);
  // forward: hid = GELU(a), a = dl W1^T + b1: da = (dpre W2) ⊙ GELU'(a).
  da_.resize(rows, hidden_);
  nn::gemm(ctx, false, false, rows, hidden_, L_, 1.f, dpre_.data(), W2.value.data(), 0.f, da_.data());
  cuda::gelu_backward(ctx, a_.data(), da_.data(), da_.size(), da_.data());  // in place: dx may be dy
  check_launch("gelu_backward");
  // dW1 [hidden, L] += da^T dl, db1 += sum over rows of da, ddl = da W1.
  nn::gemm(ctx, true, false, hidden_, L_, rows, 1.f, da_.data(), dl_.data(), 1.f, W1.grad.data());
  column_sum(ctx, da_.data(), rows, hidden_, b1.grad.data(), /*accumulate=*/true);
  nn::gemm(ctx, false, false, rows, L_, hidden_, 1.f, da_.data(), W1.value.data(), 0.f, ddl);
}

}  // namespace loglinear::cuda::lambda::detail
