// The log-linear Mamba-2 mixer (SPEC.md §8): in_proj -> z, xBC, dt, dl; causal depthwise conv +
// SiLU on xBC; g = -exp(A_log) softplus(dt + dt_bias); v = x * dt; log-linear attention with
// q = C, k = B and lambda from models/level_weights (§7); D skip; gated RMSNorm; out_proj.
// Cost: the projections O(N d_model d_in_proj) plus the operator (chunked form by default,
// O(T log T) per head). The toy task model (models/task_model.hpp) is the simpler sibling.
/// \file
/// \brief The log-linear Mamba-2 mixer (SPEC.md §8)
/// \ingroup floor_nn
#pragma once

#include <loglinear/attention/forms.hpp>
#include <loglinear/core/param.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/nn/rmsnorm.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace loglinear::nn {

/// Sizes and options of one mixer (defaults: a tiny layer).
struct Mamba2MixerConfig {
  Index d_model = 64;    ///< width of the residual stream
  Index expand = 2;      ///< d_inner = expand * d_model = H * V
  Index heads = 4;       ///< H
  Index n_groups = 1;    ///< G, divides H; q and k have G groups of K
  Index d_state = 16;    ///< K, the key / query width per group
  Index levels = 8;      ///< L_max, must be >= num_levels(T) of every sequence
  Index conv_width = 4;  ///< W of the causal depthwise conv
  std::string lambda = "mlp_softplus";  ///< §7 parameterisation, a key of lambda::lambda_names()
  Index lambda_hidden = 64;             ///< MLP width of the lambda modes
  Form form = Form::chunked;            ///< operator form
  Index chunk = 64;                     ///< C of the chunked form
};

/// The checks of a mixer config that Mamba2Mixer's and GdnMixer's constructors make: every size
/// >= 1, n_groups dividing heads, heads dividing d_inner = expand * d_model.
/// @param c the config to check
/// @throws std::invalid_argument naming the field, what it expects and what it got.
void check_mixer_config(const Mamba2MixerConfig& c);
/// The input check both mixers' forward make: u is [B*T, d_model] and the config's levels cover
/// num_levels(T). @param c the mixer's sizes @param rows u's rows (B*T) @param cols u's columns
/// @param B the batch size. @return T.
/// @throws std::invalid_argument naming u (shape) or levels.
Index check_mixer_input(const Mamba2MixerConfig& c, Index rows, Index cols, Index B);

/// One log-linear Mamba-2 mixer with its parameters, its cache and a handwritten backward.
///
/// Parameters (prefix + name): in_proj [d_inner + conv_dim + H + H*L, d_model], conv_w
/// [conv_dim, W], conv_b [1, conv_dim], dt_bias, A_log, D [1, H], norm_w [1, d_inner], out_proj
/// [d_model, d_inner], and the lambda parameters; conv_dim = d_inner + 2 G K. Excluded from weight
/// decay: dt_bias, A_log, D and lambda's Lp (`fixed`), which the sources flag `_no_weight_decay`
/// (SPEC.md §7.1 for Lp), its data-independent analogue lambda.c (`constant`, not in the sources),
/// the norm weight norm_w and the biases conv_b, lambda.b1, lambda.b2. The lambda MLP's matrices
/// lambda.W1 and lambda.W2 ARE decayed, like in_proj and out_proj: the adaptive code gives them no
/// such flag (and its own runs use Adam, or AdamW over every parameter, so no flag is honoured).
template <class Scalar>
class Mamba2Mixer {
 public:
  /// Initialised as SPEC.md §8: A_log = ln(1..H), dt_bias = softplus^-1(dt0) (dt0 log-uniform on
  /// [1e-3, 0.1], floor 1e-4), D = 1, norm_w = 1, linear / conv weights N(0, 0.02), conv_b = 0.
  /// @throws std::invalid_argument naming the config field that is out of range
  ///         (sizes >= 1; heads divisible by n_groups).
  Mamba2Mixer(const Mamba2MixerConfig& cfg, std::uint64_t seed, const std::string& prefix = "");

  /// out = mixer(u). @param u [B*T, d_model], rows ordered (b, t); @param B batch size.
  /// @return [B*T, d_model]; caches every intermediate for backward.
  /// @throws std::invalid_argument "u: ..." on a shape mismatch, "levels: ..." if num_levels(T) > L.
  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B);
  /// Backward of the last forward: ADDS into every parameter's grad; RETURNS du [B*T, d_model].
  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dout);

  /// Every trainable tensor (the mixer's own, then lambda's).
  std::vector<Param<Scalar>*> params();
  /// The config.
  const Mamba2MixerConfig& config() const { return cfg_; }
  /// The lambda parameterisation (the GPU twin, cuda/nn/mamba2_mixer.hpp, is built from it).
  lambda::LevelWeights<Scalar>& level_weights() { return *lam_; }
  /// g of the last forward, [B*T, H] (log-decay <= 0), for diagnostics.
  const RowMatrix<Scalar>& last_decay() const { return g_; }
  /// lam of the last forward, [B*T, H*L] (head-major: column h*L + l), for diagnostics.
  const RowMatrix<Scalar>& last_lambda() const { return lamv_; }

 private:
  Mamba2MixerConfig cfg_;
  Index d_inner_, conv_dim_, V_;
  std::vector<Param<Scalar>> p_;
  std::unique_ptr<lambda::LevelWeights<Scalar>> lam_;
  // Cache of the last forward, [N, features] with N = B*T.
  Index B_ = 0, T_ = 0;
  RowMatrix<Scalar> u_, z_, xbc_raw_, xbc_pre_, xbc_, dt_pre_, dt_, g_, v_, lamv_, o_, y_, yn_;
  GatedRmsNormCache<Scalar> norm_;
};

}  // namespace loglinear::nn
