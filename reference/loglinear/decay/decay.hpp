// Scalar-per-head decay (g) parameterisations of the decay design-space study (SPEC.md §14):
// one interface, a factory keyed by file name (mamba2, gla, hgrn2, lightnet, tnl, tnl_l,
// simple_decay). Each maps a pre-activation u [N = B*T, H] (one bias-free projection d -> H) to
// a log-decay g <= 0 of the same shape, the operator's `g` input. Cost O(N H) forward and backward.
// Models build one per layer through make_decay_stack (decay_stack.hpp), which also owns the
// parameters a decay shares across layers (hgrn2's lower-bound table).
/// \file
/// \brief Scalar-per-head decay (g) parameterisations of the decay design-space study (SPEC.md §14)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>
#include <loglinear/core/param.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace loglinear::decay {

/// Options every factory entry reads (each ignores what it does not use).
struct DecayOptions {
  Index heads = 1;            ///< H, one decay rate per head (scalar decay), >= 1
  Index layer = 0;            ///< index of the layer this decay belongs to, 0-based (tnl)
  Index num_layers = 2;       ///< number of layers of the model (tnl needs >= 2)
  double p = 0.99;            ///< simple_decay: initial decay rate a0 = p, in (0, 1)
  double tau = 16.0;          ///< gla: temperature, g = log sigmoid(u / tau), > 0
  std::uint64_t seed = 0;     ///< mamba2: seed of the dt_bias draw (make_decay_stack: + layer)
  std::string prefix = "";    ///< prepended to every parameter name, e.g. "layers.0."
};

/// A decay parameterisation g = phi(u; theta) <= 0 with a handwritten backward.
///
/// forward caches what backward needs (one call of backward per forward). Parameters are
/// Param rows [1, H] with weight_decay = false (the sources exclude them from AdamW),
/// named DecayOptions::prefix + their SPEC name (dt_bias, A_log, Delta, theta).
template <class Scalar>
class Decay {
 public:
  virtual ~Decay() = default;
  /// The factory key, e.g. "mamba2".
  virtual std::string name() const = 0;
  /// True if g depends on u (false for tnl and tnl_l, whose backward returns du = 0).
  virtual bool data_dependent() const { return true; }
  /// The trainable parameters (possibly none).
  virtual std::vector<Param<Scalar>*> params() { return {}; }
  /// g = phi(u). @param u [B*T, H], rows ordered (b, t), t fastest; @param B batch size
  /// (T = rows / B; only lightnet's running sum over t uses it). @return g [B*T, H], g <= 0.
  /// @throws std::invalid_argument "u: expected ..." if u has not H columns or rows % B != 0.
  virtual RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) = 0;
  /// Backward of the last forward: ADDS dL/dtheta into params()' grads, RETURNS du [B*T, H].
  /// @param dg [B*T, H], d(loss)/dg. @throws std::invalid_argument "dg: ..." on a shape mismatch.
  virtual RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) = 0;
  /// The options this decay was built from (make_decay_stack's per-layer ones: layer, num_layers,
  /// prefix, seed): heads and the constants derived from them (gla's tau, tnl's rates through
  /// detail::tnl_rate), which the GPU twin (cuda/decay/decay.hpp) reads instead of retyping.
  const DecayOptions& options() const { return opt_; }

 protected:
  /// A decay built from `opt` (kept for options()).
  explicit Decay(const DecayOptions& opt) : opt_(opt) {}

 private:
  DecayOptions opt_;
};

/// Builds the parameterisation named `key` (the file name under decay/).
/// @throws std::invalid_argument naming `decay` and listing the known keys for an unknown key,
///         or naming the option (heads, p, tau, num_layers, layer) that is out of range.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_decay(const std::string& key, const DecayOptions& opt);

/// The known factory keys, in SPEC.md §14.2 order.
std::vector<std::string> decay_names();

/// Mamba-2's dt_bias initialisation for H heads (SPEC.md §8): dt0 log-uniform on [1e-3, 0.1]
/// floored at 1e-4, dt_bias = softplus^-1(dt0), one uniform draw from `rng` per head. Shared by
/// the mamba2 decay and the Mamba-2 mixer (nn/mamba2_mixer.cpp).
/// @return dt_bias [1, H].
template <class Scalar>
RowMatrix<Scalar> mamba2_dt_bias_init(Index H, std::mt19937_64& rng);

/// mamba2 (SPEC §14.2, xmixers `mamba`; Mamba-2 §8): g = -exp(A_log) softplus(u + dt_bias);
/// A_log = ln(1..H) (§8), dt_bias = softplus^-1(dt0), dt0 log-uniform on [1e-3, 0.1], floor 1e-4.
/// dg/du = dg/d(dt_bias) = -exp(A_log) sigmoid(u + dt_bias), dg/dA_log = g.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_mamba2(const DecayOptions& opt);

/// gla (SPEC §14.2, xmixers' form, normaliser inside): g = log sigmoid(u / tau), tau = 16;
/// a0 = 0.5; dg/du = (1 - a) / tau. No parameters. Computed as -softplus(-u/tau) (never -inf).
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_gla(const DecayOptions& opt);

/// hgrn2 (SPEC §14.2, HGRN2 via xmixers): a = lb + (1 - lb) sigmoid(u), g = log a, with a per-head
/// lower bound lb in [0, 1) set by set_lower_bound (default 0 = no bound). The model-level table
/// Gamma maps to lb by hgrn2_lower_bounds; the gradient w.r.t. lb is read with lower_bound_grad().
/// dg/du = (1 - lb) sigma (1 - sigma) / a, dg/dlb = (1 - sigma) / a.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_hgrn2(const DecayOptions& opt);

/// The hgrn2 entry with its lower-bound hooks (make_decay("hgrn2") returns one of these).
template <class Scalar>
class Hgrn2Decay : public Decay<Scalar> {
 public:
  /// Sets lb [1, H], each in [0, 1). @throws std::invalid_argument "lb: ..." otherwise.
  virtual void set_lower_bound(const RowMatrix<Scalar>& lb) = 0;
  /// d(loss)/d(lb) [1, H], accumulated over backward calls since the last set_lower_bound.
  virtual const RowMatrix<Scalar>& lower_bound_grad() const = 0;

 protected:
  using Decay<Scalar>::Decay;  ///< built from its options, as every decay
};

/// HGRN2 lower bounds of every layer from Gamma [L, H] (init all ones): p = softmax over layers
/// (axis 0) per head, lb_l = sum_{j=1..l} p_j, so lb_0 = 0 and, at init, lb_l = l / L.
/// @return lb [L, H]. @throws std::invalid_argument "Gamma: ..." if it has no rows.
template <class Scalar>
RowMatrix<Scalar> hgrn2_lower_bounds(const RowMatrix<Scalar>& Gamma);
/// Backward of hgrn2_lower_bounds: dGamma_m += sum_l dlb_l p_m ([1 <= m <= l] - lb_l).
/// @param Gamma [L, H], the forward's input
/// @param dlb [L, H], gradient of the lower bounds
/// @param dGamma [L, H], added into.
template <class Scalar>
void hgrn2_lower_bounds_backward(const RowMatrix<Scalar>& Gamma, const RowMatrix<Scalar>& dlb,
                                 RowMatrix<Scalar>& dGamma);

/// lightnet (SPEC §14.2, LightNet via xmixers): no parameters; per sequence and head
/// z_{-1} = 0, z_t = logaddexp(z_{t-1}, u_t), g_t = z_{t-1} - z_t = -softplus(u_t - z_{t-1}).
/// Backward in O(T): Z_t = dg_{t+1} - dg_t + a_{t+1} Z_{t+1} (reverse, Z_T = 0), du_t = (1 - a_t) Z_t.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_lightnet(const DecayOptions& opt);

/// tnl (SPEC §14.2, TransNormerLLM via xmixers): static, data-independent, nothing to learn;
/// g_h = s_h (1 - l/(L-1) + 1e-5), s_h = -1/n_h, n_h = 2 * 128^(h/(H-1)) for layer l of L.
/// @throws std::invalid_argument for heads < 2 (the formula divides by H - 1) or num_layers < 2.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_tnl(const DecayOptions& opt);

/// simple_decay (SPEC §14.2, the study's own, code `hgrn3`): g = log sigmoid(u + Delta),
/// Delta [1, H] trainable, init ln(p / (1 - p)) so a0 = p; dg/du = dg/dDelta = 1 - a.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_simple_decay(const DecayOptions& opt);

/// tnl_l (SPEC §14.2 "TNL-L", xmixers' learned TNL): the plain learned static decay, one
/// trainable log-decay per head, the same for every token: g_h = -softplus(theta_h), theta [1, H].
/// Started at tnl's rates, theta_h = softplus^-1(-g_tnl,h), so at init it equals tnl.
/// dg/du = 0, dg/dtheta = -sigmoid(theta). The source trains g itself (theta = g, unconstrained);
/// the softplus is our change so that g <= 0 holds for every theta (SPEC §14.6 "test or clamp").
/// Unlike tnl it accepts H = 1 and num_layers = 1 (the rate formula's 0/0 ratio is taken as 0:
/// head 0's rate, layer 0's depth factor).
/// @throws std::invalid_argument "layer: ..." unless 0 <= layer < num_layers.
template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_tnl_l(const DecayOptions& opt);

}  // namespace loglinear::decay
