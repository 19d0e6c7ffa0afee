// GPU twin of reference/loglinear/decay/decay.hpp: the scalar-per-head decay (g) parameterisations
// of the decay design-space study (SPEC.md §14) on the device, one class per key with the CPU
// twin's name (mamba2, gla, hgrn2, lightnet, tnl, tnl_l, simple_decay), each built FROM an
// initialised CPU twin: its parameters are uploaded and its constants (heads, gla's tau, tnl's
// rates) are read from the CPU twin's options() through the CPU's own formulas. Each maps a
// pre-activation u [N = B*T, H] to a log-decay g <= 0 of the same shape. Parameter gradients are
// deterministic column sums (core/reduce.hpp), never atomics. Cost O(N H) both ways (lightnet: a
// sequential scan over T per sequence and head).
/// \file
/// \brief GPU twin of decay/decay.hpp: decay (g) parameterisations, SPEC.md §14
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/decay/decay.hpp>

#include <memory>
#include <string>
#include <vector>

namespace loglinear::cuda::decay {

/// A decay parameterisation g = phi(u; theta) <= 0 on the device, twin of decay::Decay<float>.
///
/// forward caches what backward needs (one backward per forward). Parameters have the CPU twin's
/// names, shapes ([1, H]) and order.
class Decay {
 public:
  virtual ~Decay() = default;
  /// The factory key, e.g. "mamba2".
  virtual std::string name() const = 0;
  /// True if g depends on u (false for tnl and tnl_l, whose backward writes du = 0).
  virtual bool data_dependent() const { return true; }
  /// The trainable parameters (possibly none), as the CPU twin's params().
  virtual std::vector<DeviceParam*> params() { return {}; }
  /// H, the number of heads.
  Index heads() const { return H_; }
  /// g = phi(u). @param u [B*T, H], rows ordered (b, t), t fastest @param B batch size (T = rows / B)
  /// @param g resized to [B*T, H], overwritten; may not alias u.
  /// @throws std::invalid_argument "u: expected ..." if u has not H columns or rows % B != 0.
  /// @param ctx the context (stream, cuBLAS handle) the call is queued on
  virtual void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) = 0;
  /// Backward of the last forward: ADDS dL/dtheta into params()' grads, WRITES du.
  /// @param dg [B*T, H] @param du resized to [B*T, H]; may not alias dg.
  /// @throws std::invalid_argument "dg: ..." on a shape mismatch with the last forward.
  /// @param ctx the context (stream, cuBLAS handle) the call is queued on
  virtual void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) = 0;

 protected:
  /// A decay over `heads` heads.
  explicit Decay(Index heads) : H_(heads) {}
  Index H_;  ///< heads
};

/// The hgrn2 twin with its lower-bound hooks (make_decay of a CPU hgrn2 returns one of these).
/// The lower bound starts at 0, as a fresh CPU twin's; the stack sets it from Gamma.
class Hgrn2Decay : public Decay {
 public:
  /// Sets lb [1, H] from the host, each in [0, 1), and zeroes the lower-bound gradient.
  /// @throws std::invalid_argument "lb: ..." otherwise (the CPU twin's checks and messages).
  virtual void set_lower_bound(Context& ctx, const RowMatrix<float>& lb) = 0;
  /// Sets lb to row `row` of the device table `lbs` [rows, H] (no range check: the stack's
  /// table is a softmax cumsum, in [0, 1)), and zeroes the lower-bound gradient.
  /// @throws std::invalid_argument "lbs: ..." / "row: ..." on a shape or index mismatch.
  virtual void set_lower_bound(Context& ctx, const DeviceMatrix& lbs, Index row) = 0;
  /// d(loss)/d(lb) [1, H], accumulated over backward calls since the last set_lower_bound.
  virtual const DeviceMatrix& lower_bound_grad() const = 0;

 protected:
  using Decay::Decay;  ///< built as every decay
};

/// The GPU twin of `cpu` (any key of decay::decay_names()): parameters uploaded on ctx's stream,
/// gradients zero, constants from cpu.options(). `cpu` is only read (non-const because its
/// params() is).
/// @throws std::invalid_argument "decay: ..." for an unknown name, "cpu: ..." if its parameters do
///         not have the key's names and shapes.
std::unique_ptr<Decay> make_decay(::loglinear::decay::Decay<float>& cpu, Context& ctx);

/// The factory entries, one per file: the twin of a CPU twin with that key.
/// @throws std::invalid_argument "cpu: ..." if cpu has another key or its parameters do not match.
std::unique_ptr<Decay> make_mamba2(::loglinear::decay::Decay<float>& cpu, Context& ctx);
/// See make_mamba2.
std::unique_ptr<Decay> make_gla(::loglinear::decay::Decay<float>& cpu, Context& ctx);
/// See make_mamba2; returns an Hgrn2Decay.
std::unique_ptr<Decay> make_hgrn2(::loglinear::decay::Decay<float>& cpu, Context& ctx);
/// See make_mamba2.
std::unique_ptr<Decay> make_lightnet(::loglinear::decay::Decay<float>& cpu, Context& ctx);
/// See make_mamba2.
std::unique_ptr<Decay> make_tnl(::loglinear::decay::Decay<float>& cpu, Context& ctx);
/// See make_mamba2.
std::unique_ptr<Decay> make_tnl_l(::loglinear::decay::Decay<float>& cpu, Context& ctx);
/// See make_mamba2.
std::unique_ptr<Decay> make_simple_decay(::loglinear::decay::Decay<float>& cpu, Context& ctx);

/// Twin of decay::hgrn2_lower_bounds: p = softmax over layers (axis 0) per head, lb_l = sum_{j=1..l} p_j.
/// One thread per head, every sum in layer order (deterministic). O(layers H).
/// @param Gamma [layers, H] @param lb resized to [layers, H].
/// @throws std::invalid_argument "Gamma: ..." if it has no rows or no columns.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void hgrn2_lower_bounds(Context& ctx, const DeviceMatrix& Gamma, DeviceMatrix& lb);
/// Twin of decay::hgrn2_lower_bounds_backward: dGamma_m += sum_l dlb_l p_m ([1 <= m <= l] - lb_l).
/// @param Gamma [layers, H], the forward's input @param dlb [layers, H] @param dGamma [layers, H], added into.
/// @throws std::invalid_argument "dlb: ..." / "dGamma: ..." unless they have Gamma's shape.
/// @param ctx the context (stream, cuBLAS handle) the call is queued on
void hgrn2_lower_bounds_backward(Context& ctx, const DeviceMatrix& Gamma, const DeviceMatrix& dlb,
                                 DeviceMatrix& dGamma);

}  // namespace loglinear::cuda::decay
