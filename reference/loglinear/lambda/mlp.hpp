// The MLP shared by the two adaptive modes (SPEC.md §7.2): pre = W2 GELU(W1 dl + b1) + b2 on each
// [token, head] row of L inputs, one MLP for all heads. mlp_softplus.cpp and mlp_softmax.cpp
// differ only in the output map from pre to lam, which they supply as output / output_backward.
// O(N H L hidden) both ways.
/// \file
/// \brief The MLP shared by the two adaptive modes (SPEC.md §7.2)
/// \ingroup floor_operator
#pragma once

#include <loglinear/lambda/lambda.hpp>

namespace loglinear::lambda::detail {

/// The MLP modes' common part: parameters W1, b1, W2, b2 and the hidden layer's forward/backward.
template <class Scalar>
class MlpLevelWeights : public LevelWeights<Scalar> {
 public:
  /// Parameters of the MLP: W1 [hidden, L] xavier-uniform from `rng`, b1 = 0, W2 = 0, b2 = `b2`.
  /// @throws std::invalid_argument "mlp_hidden: ..." if opt.hidden < 1.
  MlpLevelWeights(const LevelWeightsOptions& opt, Scalar b2, std::mt19937_64& rng);
  std::vector<Param<Scalar>*> params() override { return {&W1_, &b1_, &W2_, &b2_}; }

 protected:
  /// lam from pre (both [N*H, L]); may cache what output_backward needs.
  virtual RowMatrix<Scalar> output(const RowMatrix<Scalar>& pre) = 0;
  /// d(pre) from dlam for the last output call.
  virtual RowMatrix<Scalar> output_backward(const RowMatrix<Scalar>& dlam) = 0;

  RowMatrix<Scalar> forward_rows(const RowMatrix<Scalar>& dl) final;
  RowMatrix<Scalar> backward_rows(const RowMatrix<Scalar>& dlam) final;

 private:
  Param<Scalar> W1_, b1_, W2_, b2_;
  RowMatrix<Scalar> dl_, a_, hid_;  // cache: input, W1 dl + b1, GELU of it
};

}  // namespace loglinear::lambda::detail
