// Level-weight (lambda) parameterisations, SPEC.md §7: how the per-token, per-level weights
// lam[t,h,l] of log-linear attention are made from a projection dl of the layer input.
//   fixed         softplus(Lp ⊙ dl)                     (original log-linear Mamba-2, §7.1)
//   constant      softplus(c[h,l]), input-independent   (the "fixed" of the paper's abstract)
//   mlp_softplus  softplus(W2 GELU(W1 dl + b1) + b2)    (adaptive memory decay, §7.2)
//   mlp_softmax   softmax_l(W2 GELU(W1 dl + b1) + b2)   (the paper's softmax ablation)
#pragma once

#include <loglinear/models/param.hpp>

#include <random>
#include <string>
#include <vector>

namespace loglinear::models {

/// The four parameterisations; names are their factory keys.
enum class LambdaMode { fixed, constant, mlp_softplus, mlp_softmax };

/// Parses "fixed", "constant", "mlp_softplus" or "mlp_softmax".
/// @throws std::invalid_argument naming the accepted values otherwise.
LambdaMode parse_lambda_mode(const std::string& name);
/// The factory key of a mode.
std::string lambda_mode_name(LambdaMode mode);

/// Lambda for H heads and L levels; the MLP (shared by all heads) acts on each head's L inputs.
template <class Scalar>
class LevelWeights {
 public:
  /// Parameters initialised as the sources do: Lp = 1; c = softplus^-1(1); W1 xavier-uniform,
  /// b1 = 0, W2 = 0 and b2 = 0.54 (softplus) / 0 (softmax), so lam ~ 0.9992 / 1/L at init.
  LevelWeights(LambdaMode mode, Index H, Index L, Index hidden, std::mt19937_64& rng,
               const std::string& prefix);

  /// lam from dl. @param dl [N, H*L] @return lam [N, H*L]; caches what backward needs.
  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& dl);
  /// Backward of the last forward: adds parameter gradients, returns d(dl) [N, H*L].
  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dlam);

  /// The trainable tensors of this mode.
  std::vector<Param<Scalar>*> params();
  /// The mode.
  LambdaMode mode() const { return mode_; }

 private:
  LambdaMode mode_;
  Index H_, L_, hidden_;
  std::vector<Param<Scalar>> p_;  // fixed: Lp; constant: c; mlp: W1, b1, W2, b2
  // Cache of the last forward.
  RowMatrix<Scalar> dl_, pre_, a_, hid_, lam_;  // pre_ = the argument of softplus / softmax
};

}  // namespace loglinear::models
