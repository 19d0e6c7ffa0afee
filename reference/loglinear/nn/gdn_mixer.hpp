// The log-linear Gated DeltaNet mixer (SPEC.md §6, "Model specifics"; the official
// `HGatedDeltaNet` layer), the twin of the log-linear Mamba-2 mixer (nn/mamba2_mixer.hpp) for the
// LM: in_proj -> q, k, v, z, a, b, dl; causal depthwise conv + SiLU on q, k, v; q and k
// L2-normalised per group; beta = sigmoid(b); g = -exp(A_log) softplus(a + dt_bias); lambda from
// lambda/ (§7); the log-linear Gated DeltaNet operator (attention/gdn_forms.hpp); RMSNorm per head
// then the SiLU(z) gate; out_proj. Cost: the projections O(N d_model d_in_proj) plus the operator
// (chunked form by default, O(T log T) per head, about 2-3x the Mamba-2 operator's work).
/// \file
/// \brief The log-linear Gated DeltaNet mixer (SPEC.md §6), the LM's alternative to the Mamba-2 mixer
/// \ingroup floor_nn
#pragma once

#include <loglinear/attention/forms.hpp>
#include <loglinear/core/param.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/nn/l2norm.hpp>
#include <loglinear/nn/mamba2_mixer.hpp>
#include <loglinear/nn/rmsnorm.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loglinear::nn {

/// The Gated DeltaNet mixer's sizes and options are the Mamba-2 mixer's, read the same way:
/// d_inner = expand * d_model = H * V is the value width, q and k have n_groups groups of
/// K = d_state (the official layer has one group per head), levels, conv_width, lambda,
/// lambda_hidden, form and chunk as there. One struct, so that the LM switches mixers by a key.
using GdnMixerConfig = Mamba2MixerConfig;

/// One log-linear Gated DeltaNet mixer with its parameters, its cache and a handwritten backward.
///
/// Forward, for u [N, d_model] (N = B*T), with GK = n_groups * K and d_inner = H * V:
///
///     [q | k | v | z | a | b | dl] = u in_proj^T      sizes GK, GK, d_inner, d_inner, H, H, H*L (this order)
///     [q | k | v] = SiLU(conv1d([q | k | v]; conv_w)) causal depthwise, width W, no bias (fla conv_bias=False)
///     q, k        = L2-normalised per group of K      (SPEC.md §6: "q and k L2-normalised")
///     beta        = sigmoid(b)                         [N, H]   (SPEC.md §6: beta = sigmoid(b_proj x))
///     g           = -exp(A_log) softplus(a + dt_bias)  [N, H]   (SPEC.md §6, the Mamba-2 decay of §8)
///     lam         = LevelWeights(dl)                   [N, H*L] (SPEC.md §7, any mode)
///     o           = GatedDeltaNet(q, k, v, g, beta, lam)        (SPEC.md §6, attention/gdn_*.hpp)
///     y           = RMSNorm_per_head(o) * norm_w ⊙ SiLU(z)      (fla FusedRMSNormGated: norm, then gate)
///     out         = y out_proj^T
///
/// SPEC.md §6 also scales q by K^-1/2 and multiplies lam by sqrt(K) (SCALE_LAMBDA); the two cancel
/// on every level, so neither is applied here. Unlike the Mamba-2 mixer there is no D skip and v
/// is not multiplied by dt (the official layer has neither). Where SPEC.md §6 and issue 16 differ:
/// SPEC's lam is softplus(Lp ⊙ l_proj x) over 15 levels (the `fixed` mode of §7.1), the issue asks
/// for "lambda from the existing parameterisations", so any lambda mode and `levels` are accepted
/// (`fixed` is SPEC's); SPEC's model specifics do not list the short conv, the official layer
/// (use_short_conv = True, SiLU, no bias) has it, and so does this mixer.
///
/// Parameters (prefix + name, this order): in_proj [2 GK + 2 d_inner + 2 H + H*L, d_model],
/// conv_w [2 GK + d_inner, W], dt_bias [1, H], A_log [1, H], norm_w [1, d_inner],
/// out_proj [d_model, d_inner], then the lambda parameters (prefix + "lambda."). Excluded from
/// weight decay: dt_bias, A_log, norm_w and lambda's (as Mamba2Mixer documents).
/// Departures from the official layer, for a fair comparison with the Mamba-2 mixer: one in_proj
/// instead of q/k/v/a/b/g/l projections (the same maps, stacked), A_log = ln(1..H) as the Mamba-2
/// mixer (the official layer draws A ~ U(0, 16)), and one norm weight per channel ([1, d_inner],
/// as the Mamba-2 mixer) where fla shares one [V] weight across the heads.
template <class Scalar>
class GdnMixer {
 public:
  /// Initialised as the Mamba-2 mixer (SPEC.md §8): A_log = ln(1..H), dt_bias = softplus^-1(dt0)
  /// (dt0 log-uniform on [1e-3, 0.1], floor 1e-4), norm_w = 1, in_proj, conv_w and out_proj
  /// N(0, 0.02); lambda draws from a generator of its own.
  /// @param cfg sizes and options (see GdnMixerConfig)
  /// @param seed seed of the initialisation
  /// @param prefix prepended to every parameter name (the LM passes "blocks.i.mixer.")
  /// @throws std::invalid_argument naming the config field that is out of range (sizes >= 1;
  ///         heads divisible by n_groups; d_inner divisible by heads), and as
  ///         lambda::make_level_weights for an unknown lambda key.
  GdnMixer(const GdnMixerConfig& cfg, std::uint64_t seed, const std::string& prefix = "");

  /// out = mixer(u); caches every intermediate for backward.
  /// @param u [B*T, d_model], rows ordered (b, t)
  /// @param B batch size
  /// @return [B*T, d_model]
  /// @throws std::invalid_argument "u: ..." on a shape mismatch, "levels: ..." if num_levels(T) > L.
  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B);
  /// Backward of the last forward: ADDS into every parameter's grad.
  /// @param dout d(loss)/d(out) [B*T, d_model]
  /// @return du [B*T, d_model]
  /// @throws std::invalid_argument "dout: ..." if its shape differs from the forward's output.
  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dout);

  /// Every trainable tensor (the mixer's own in the documented order, then lambda's).
  std::vector<Param<Scalar>*> params();
  /// The config.
  const GdnMixerConfig& config() const { return cfg_; }
  /// The lambda parameterisation.
  lambda::LevelWeights<Scalar>& level_weights() { return *lam_; }
  /// g of the last forward, [B*T, H] (log-decay <= 0), for diagnostics.
  const RowMatrix<Scalar>& last_decay() const { return g_; }
  /// lam of the last forward, [B*T, H*L] (head-major: column h*L + l), for diagnostics.
  const RowMatrix<Scalar>& last_lambda() const { return lamv_; }
  /// beta of the last forward, [B*T, H] (write strength in [0, 1]), for diagnostics.
  const RowMatrix<Scalar>& last_beta() const { return beta_; }

 private:
  GdnMixerConfig cfg_;
  Index d_inner_, gk_, conv_dim_, V_;
  std::vector<Param<Scalar>> p_;
  std::unique_ptr<lambda::LevelWeights<Scalar>> lam_;
  RowMatrix<Scalar> conv_b_zero_, conv_b_grad_;  // the bias-free conv's zero bias and its unused grad
  // Cache of the last forward, [N, features] with N = B*T.
  Index B_ = 0, T_ = 0;
  RowMatrix<Scalar> u_, qkv_raw_, qkv_pre_, q_, k_, v_, z_, dt_pre_, g_, b_pre_, beta_, lamv_, o_, on_;
  L2NormCache<Scalar> qn_, kn_;
  RmsNormCache<Scalar> norm_;
};

}  // namespace loglinear::nn
