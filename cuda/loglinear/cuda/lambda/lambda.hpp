// GPU twin of reference/loglinear/lambda/lambda.hpp: the level-weight (lambda) parameterisations
// of SPEC.md §7 on the device, one class per mode with the CPU twin's name, built FROM an
// initialised CPU twin (its parameters are uploaded, so both start from the same weights):
//   fixed.cu         softplus(Lp ⊙ dl)                     (§7.1)
//   constant.cu      softplus(c[h,l]), input-independent
//   mlp_softplus.cu  softplus(W2 GELU(W1 dl + b1) + b2)    (§7.2; the MLP is mlp.cu)
//   mlp_softmax.cu   softmax_l(W2 GELU(W1 dl + b1) + b2)
// Every mode works on the [N*H, L] view of dl (row-major: a free reshape). Parameter gradients
// are sums over rows, taken by the deterministic column sums of core/reduce.hpp or by cuBLAS
// GEMMs (no atomics), so these layers give the same bits every run. Cost O(N H L) for fixed and
// constant, O(N H L hidden) for the MLP modes, both ways.
/// \file
/// \brief GPU twin of lambda/lambda.hpp: level-weight (lambda) parameterisations, SPEC.md §7
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/lambda/lambda.hpp>

#include <memory>
#include <string>
#include <vector>

namespace loglinear::cuda::lambda {

/// A lambda parameterisation lam = f(dl; theta) on the device, twin of lambda::LevelWeights<float>.
///
/// forward caches what backward needs (one backward per forward). The non-virtual forward and
/// backward check shapes (the CPU twin's messages) and hand the [N*H, L] row view to the mode's
/// forward_rows / backward_rows. params() has the CPU twin's names, shapes and order.
class LevelWeights {
 public:
  virtual ~LevelWeights() = default;
  /// The factory key, e.g. "mlp_softplus" (the CPU twin's name()).
  virtual std::string name() const = 0;
  /// The trainable tensors, in the CPU twin's order and with its names (checkpoint keys).
  virtual std::vector<DeviceParam*> params() = 0;
  /// H, the number of heads.
  Index heads() const { return H_; }
  /// L, the number of levels.
  Index levels() const { return L_; }

  /// lam from dl, caching for backward.
  /// @param dl [N, H*L] @param lam resized to [N, H*L] (column h*L + l), overwritten; may not alias dl.
  /// @throws std::invalid_argument "dl: ..." if dl has not H*L columns.
  /// @param ctx the context (stream, cuBLAS handle) the call is queued on
  void forward(Context& ctx, const DeviceMatrix& dl, DeviceMatrix& lam);
  /// Backward of the last forward: ADDS parameter gradients into params()' grad, WRITES ddl.
  /// @param dlam [N, H*L] @param ddl resized to [N, H*L]; may not alias dlam.
  /// @throws std::invalid_argument "dlam: ..." if its shape differs from the last forward's lam.
  /// @param ctx the context (stream, cuBLAS handle) the call is queued on
  void backward(Context& ctx, const DeviceMatrix& dlam, DeviceMatrix& ddl);

 protected:
  /// A mode for `heads` heads and `levels` levels.
  LevelWeights(Index heads, Index levels) : H_(heads), L_(levels) {}
  /// lam rows [rows = N*H, L] from dl rows [rows, L] (device pointers); row r belongs to head r % H.
  virtual void forward_rows(Context& ctx, const float* dl, Index rows, float* lam) = 0;
  /// ddl rows [rows, L] from dlam rows [rows, L], adding parameter gradients.
  virtual void backward_rows(Context& ctx, const float* dlam, Index rows, float* ddl) = 0;
  Index H_;  ///< heads
  Index L_;  ///< levels

 private:
  Index rows_ = -1;  // N of the last forward (backward checks against it)
};

/// The GPU twin of `cpu` (any mode of lambda::lambda_names()), its parameters uploaded on ctx's
/// stream; gradients start at zero. `cpu` is only read (non-const because its params() is).
/// @throws std::invalid_argument "lambda: ..." for an unknown name, "cpu: ..." if its parameters
///         do not have the mode's names and shapes.
std::unique_ptr<LevelWeights> make_level_weights(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx);
/// make_level_weights(cpu, ctx) after checking that cpu has `heads` heads and `levels` levels
/// (the model's configuration). @throws std::invalid_argument "heads: ..." / "levels: ..." on a
/// mismatch, and as make_level_weights(cpu, ctx).
std::unique_ptr<LevelWeights> make_level_weights(::loglinear::lambda::LevelWeights<float>& cpu, Index heads,
                                                 Index levels, Context& ctx);

/// The factory entries, one per file: the twin of a CPU twin of that mode.
/// @throws std::invalid_argument "cpu: ..." if cpu is another mode or its parameters do not match.
std::unique_ptr<LevelWeights> make_fixed(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx);
/// See make_fixed.
std::unique_ptr<LevelWeights> make_constant(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx);
/// See make_fixed.
std::unique_ptr<LevelWeights> make_mlp_softplus(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx);
/// See make_fixed.
std::unique_ptr<LevelWeights> make_mlp_softmax(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx);

}  // namespace loglinear::cuda::lambda
