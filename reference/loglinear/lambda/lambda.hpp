// Level-weight (lambda) parameterisations, SPEC.md §7: how the per-token, per-level weights
// lam[t,h,l] of log-linear attention are made from a projection dl of the layer input. One
// interface, a factory keyed by file name (like decay/):
//   fixed.cpp         softplus(Lp ⊙ dl)                     (original log-linear Mamba-2, §7.1)
//   constant.cpp      softplus(c[h,l]), input-independent   (the "fixed" of the paper's abstract)
//   mlp_softplus.cpp  softplus(W2 GELU(W1 dl + b1) + b2)    (adaptive memory decay, §7.2)
//   mlp_softmax.cpp   softmax_l(W2 GELU(W1 dl + b1) + b2)   (the paper's softmax ablation)
// Every mode works on the [N*H, L] view of dl (one row per token and head; row-major storage makes
// it a free reshape). Cost O(N H L) for fixed and constant, O(N H L hidden) for the MLP modes.
/// \file
/// \brief Level-weight (lambda) parameterisations, SPEC.md §7
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/param.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace loglinear::lambda {

/// Sizes and initialisation inputs every mode reads (each ignores what it does not use).
struct LevelWeightsOptions {
  Index heads = 1;          ///< H, >= 1
  Index levels = 1;         ///< L, >= 1: lam has L weights per token and head
  Index hidden = 64;        ///< hidden width of the MLP modes, >= 1
  std::string prefix = "";  ///< prepended to every parameter name, e.g. "layers.0.lambda."
};

/// A lambda parameterisation lam = f(dl; theta) with a handwritten backward.
///
/// forward caches what backward needs (one backward per forward). The non-virtual forward and
/// backward check shapes and do the [N, H*L] <-> [N*H, L] reshape; each mode implements the
/// per-row maps forward_rows / backward_rows. Parameter names (checkpoint keys): fixed "Lp" [H, L];
/// constant "c" [H, L]; MLP modes "W1" [hidden, L], "b1" [1, hidden], "W2" [L, hidden], "b2" [1, L].
template <class Scalar>
class LevelWeights {
 public:
  virtual ~LevelWeights() = default;
  /// The factory key, e.g. "mlp_softplus".
  virtual std::string name() const = 0;
  /// The trainable tensors of this mode, in checkpoint order.
  virtual std::vector<Param<Scalar>*> params() = 0;
  /// H, the number of heads (the GPU twin, cuda/lambda/lambda.hpp, is built with it).
  Index heads() const { return H_; }
  /// L, the number of levels.
  Index levels() const { return L_; }

  /// lam from dl. @param dl [N, H*L] @return lam [N, H*L] (column h*L + l); caches for backward.
  /// @throws std::invalid_argument "dl: ..." if dl has not H*L columns.
  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& dl);
  /// Backward of the last forward: ADDS parameter gradients, RETURNS d(dl) [N, H*L].
  /// @throws std::invalid_argument "dlam: ..." if its shape differs from the last forward's lam.
  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dlam);

 protected:
  /// A mode for `heads` heads and `levels` levels.
  LevelWeights(Index heads, Index levels) : H_(heads), L_(levels) {}
  /// lam rows [N*H, L] from dl rows [N*H, L]; row r belongs to head r % H.
  virtual RowMatrix<Scalar> forward_rows(const RowMatrix<Scalar>& dl) = 0;
  /// d(dl) rows [N*H, L] from dlam rows [N*H, L], adding parameter gradients.
  virtual RowMatrix<Scalar> backward_rows(const RowMatrix<Scalar>& dlam) = 0;
  Index H_;  ///< heads
  Index L_;  ///< levels

 private:
  Index rows_ = -1;  // N of the last forward (backward checks against it)
};

/// The known factory keys, in SPEC.md §7 order: fixed, constant, mlp_softplus, mlp_softmax.
std::vector<std::string> lambda_names();

/// Builds the parameterisation named `key` (the file name under lambda/), initialised as the
/// sources do: Lp = 1; c = softplus^-1(1); W1 xavier-uniform (drawn from `rng`), b1 = 0, W2 = 0
/// and b2 = 0.54 (softplus) / 0 (softmax), so lam ~ 0.9992 / 1/L at init.
/// @throws std::invalid_argument naming `lambda` and listing the known keys for an unknown key,
///         or naming the option (heads, levels, hidden) that is out of range.
template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_level_weights(const std::string& key,
                                                          const LevelWeightsOptions& opt,
                                                          std::mt19937_64& rng);

/// The factory entries, one per file.
template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_fixed(const LevelWeightsOptions& opt);
/// See make_fixed.
template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_constant(const LevelWeightsOptions& opt);
/// See make_fixed.
template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_mlp_softplus(const LevelWeightsOptions& opt,
                                                         std::mt19937_64& rng);
/// See make_fixed.
template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_mlp_softmax(const LevelWeightsOptions& opt,
                                                        std::mt19937_64& rng);

}  // namespace loglinear::lambda
