// The MLP shared by the two adaptive lambda modes on the GPU (SPEC.md §7.2): pre = W2 GELU(W1 dl +
// b1) + b2 on each [token, head] row of L inputs, one MLP for all heads. GPU twin of
// reference/loglinear/lambda/mlp.hpp. mlp_softplus.cu and mlp_softmax.cu supply the output map
// from pre to lam. The products are cuBLAS GEMMs on the [N*H, L] row view (nn::gemm), the bias
// and GELU one elementwise pass each, the bias gradients deterministic column sums.
// O(N H L hidden) both ways.
#pragma once

#include <loglinear/cuda/lambda/lambda.hpp>

namespace loglinear::cuda::lambda::detail {

/// The MLP modes' common part: W1 [hidden, L], b1 [1, hidden], W2 [L, hidden], b2 [1, L] (the CPU
/// twin's names and order) and the hidden layer's forward / backward.
class MlpLevelWeights : public LevelWeights {
 public:
  /// Uploads the parameters of `cpu`, which must be the MLP mode `mode`.
  /// @throws std::invalid_argument "cpu: ..." if it is another mode or its parameters do not match.
  MlpLevelWeights(::loglinear::lambda::LevelWeights<float>& cpu, const std::string& mode, Context& ctx);
  std::vector<DeviceParam*> params() override { return {&p_[0], &p_[1], &p_[2], &p_[3]}; }

 protected:
  /// lam [rows, L] from pre [rows, L] (device pointers); may cache what output_backward needs.
  virtual void output(Context& ctx, const float* pre, Index rows, float* lam) = 0;
  /// dpre [rows, L] from dlam for the last output call; `pre` is that call's input.
  virtual void output_backward(Context& ctx, const float* pre, const float* dlam, Index rows, float* dpre) = 0;

  void forward_rows(Context& ctx, const float* dl, Index rows, float* lam) final;
  void backward_rows(Context& ctx, const float* dlam, Index rows, float* ddl) final;

 private:
  Index hidden_;
  std::vector<DeviceParam> p_;        // W1, b1, W2, b2
  DeviceMatrix dl_, a_, hid_, pre_;   // cache: input, W1 dl + b1, GELU of it, W2 hid + b2
  DeviceMatrix dpre_, da_;            // backward's temporaries
};

}  // namespace loglinear::cuda::lambda::detail
