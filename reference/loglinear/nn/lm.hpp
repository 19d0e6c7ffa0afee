// A small log-linear Mamba-2 language model (SPEC.md §8, block `HAttentionBlock`): embedding ->
// N x [x += mixer(RMSNorm(x)); x += SwiGLU(RMSNorm(x))] -> RMSNorm -> untied head, with the mean
// softmax cross-entropy over the positions a label mask keeps, and a handwritten backward.
// Cost per step: the mixers' (nn/mamba2_mixer.hpp) plus O(N d (hidden + vocab)) matmuls.
// The toy task model (nn/task_model.hpp) is the post-norm, conv-free sibling. With mixer_kind
// "gdn" every block's mixer is the log-linear Gated DeltaNet mixer (nn/gdn_mixer.hpp) instead.
/// \file
/// \brief A small log-linear Mamba-2 language model (SPEC.md §8, block `HAttentionBlock`)
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/param.hpp>
#include <loglinear/nn/gdn_mixer.hpp>
#include <loglinear/nn/mamba2_mixer.hpp>
#include <loglinear/nn/rmsnorm.hpp>
#include <loglinear/nn/swiglu.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loglinear::nn {

/// Sizes of the LM; mixer.d_model is overwritten with d_model.
struct LmConfig {
  Index vocab = 256;          ///< token ids in [0, vocab)
  Index d_model = 64;         ///< residual width
  Index layers = 2;           ///< number of blocks
  Index mlp_hidden = 256;     ///< SwiGLU hidden width (fla uses ~8/3 d rounded; here explicit)
  Mamba2MixerConfig mixer;    ///< every block's mixer's sizes (either kind: GdnMixerConfig is the same struct)
  /// Which mixer every block has: "mamba2" (Mamba2Mixer, SPEC.md §8) or "gdn" (GdnMixer, SPEC.md
  /// §6). Called mixer_kind because `mixer` above holds the sizes.
  std::string mixer_kind = "mamba2";
};

/// The LM with its parameters and the cache of the last forward.
///
/// Parameters: embedding [vocab, d] N(0, 0.02); per block "blocks.i.": norm1 [1, d], mixer.*,
/// norm2 [1, d], mlp.W_gate, mlp.W_up [hidden, d], mlp.W_down [d, hidden]; norm_f [1, d];
/// lm_head [vocab, d]. Norm weights start at 1 and are excluded from weight decay. mixer.* are
/// Mamba2Mixer's or GdnMixer's parameters, as mixer_kind says; either mixer of block i is built
/// from the same seed, so the rest of the model starts from the same weights.
template <class Scalar>
class MambaLm {
 public:
  /// @throws std::invalid_argument naming the config field out of range (vocab >= 2, sizes >= 1),
  ///         "mixer_kind: ..." unless it is mamba2 or gdn, and as the mixer's constructor.
  MambaLm(const LmConfig& cfg, std::uint64_t seed);
  ~MambaLm();

  /// Logits [B*T, vocab] of tokens [B*T] (rows (b, t), t fastest); caches for backward.
  /// @throws std::invalid_argument "tokens: ..." if the size is not a multiple of B or an id is
  ///         outside [0, vocab), and as Mamba2Mixer::forward.
  RowMatrix<Scalar> logits(const std::vector<std::int32_t>& tokens, Index B);
  /// Forward to the mean cross-entropy over positions with targets[n] >= 0 (the label mask:
  /// -1 = not scored); caches d(loss)/d(logits) for backward.
  /// @param tokens [B*T] ids, rows (b, t) @param targets [B*T] labels or -1 @param B batch size
  /// @param correct if not null, receives the number of scored positions whose argmax is right.
  /// @throws std::invalid_argument "targets: ..." if its size differs from tokens' or a label is
  ///         outside [-1, vocab), and as logits().
  double forward(const std::vector<std::int32_t>& tokens, const std::vector<std::int32_t>& targets, Index B,
                 Index* correct = nullptr);
  /// Backward of the last forward(): ADDS d(loss)/d(parameter) into every grad.
  /// @throws std::logic_error if forward() has not run since the last backward.
  void backward();
  /// Every trainable tensor, in a fixed order (checkpoints and the optimiser rely on it).
  std::vector<Param<Scalar>*> params();
  /// Sets every gradient to zero.
  void zero_grad();
  /// Number of blocks.
  Index num_layers() const { return Index(blocks_.size()); }
  /// The configuration (mixer.d_model as given: each block's mixer has d_model).
  const LmConfig& config() const { return cfg_; }
  /// What the checkpoint's architecture entry records: "mamba2_lm lambda=<mode>", or with
  /// mixer_kind gdn "gdn_lm lambda=<mode>".
  std::string architecture() const {
    return (cfg_.mixer_kind == "gdn" ? "gdn_lm lambda=" : "mamba2_lm lambda=") + cfg_.mixer.lambda;
  }
  /// The Mamba-2 mixer of block i (0 <= i < num_layers()), e.g. for its last g and lam.
  /// @throws std::invalid_argument "layer: ..." if i is out of range, std::logic_error if the
  ///         blocks have Gated DeltaNet mixers (mixer_kind gdn: see gdn_mixer).
  const Mamba2Mixer<Scalar>& mixer(Index i) const;
  /// The Mamba-2 mixer of block i, mutable (the GPU twin, cuda/nn/lm.hpp, is built from it).
  /// Throws as above.
  Mamba2Mixer<Scalar>& mixer(Index i);
  /// The Gated DeltaNet mixer of block i (mixer_kind gdn).
  /// @throws std::invalid_argument "layer: ..." if i is out of range, std::logic_error if the
  ///         blocks have Mamba-2 mixers.
  const GdnMixer<Scalar>& gdn_mixer(Index i) const;
  /// g [B*T, H] of block i's mixer (either kind) in the last forward. Throws "layer: ..." as mixer.
  const RowMatrix<Scalar>& last_decay(Index i) const;
  /// lam [B*T, H*L] of block i's mixer (either kind) in the last forward. Throws as last_decay.
  const RowMatrix<Scalar>& last_lambda(Index i) const;

 private:
  struct Block;
  const Block& block(Index i) const;  // throws "layer: ..." when out of range
  LmConfig cfg_;
  std::vector<Param<Scalar>> top_;  // embedding, norm_f, lm_head
  std::vector<std::unique_ptr<Block>> blocks_;
  std::vector<std::int32_t> tokens_;
  RowMatrix<Scalar> x_final_, xn_final_;
  RmsNormCache<Scalar> norm_f_;
  RowMatrix<Scalar> dlogits_;  // d(loss)/d(logits) of the last forward(); empty once consumed
};

}  // namespace loglinear::nn
