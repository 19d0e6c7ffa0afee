// Streaming decoder of log-linear Gated DeltaNet: one token at a time for B x H streams,
// O(L K V) memory per stream (SPEC.md §6). Its outputs equal gdn_recurrent_forward on the whole
// sequence; its state can be exported and resumed.
/// \file
/// \brief Streaming decoder of log-linear Gated DeltaNet (SPEC.md §6)
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/fenwick_state.hpp>
#include <loglinear/attention/gdn_fenwick_state.hpp>

#include <vector>

namespace loglinear {

/// Autoregressive decoder of log-linear Gated DeltaNet over B x H independent streams.
///
/// The exported state has the Mamba-2 decoder's layout (FenwickState, [B,H,L,K,V] with
/// L = num_levels(tokens)); its level l holds the Gated DeltaNet bucket sums of
/// GdnFenwickHeadState, so it resumes a GdnDecoder, not a Mamba-2 Decoder.
template <class Scalar>
class GdnDecoder {
 public:
  /// Empty streams.
  /// @param B batches  @param H heads  @param G query/key groups (G divides H)
  /// @param K key size  @param V value size
  /// @throws std::invalid_argument if a size is < 1, G does not divide H, or B x H streams with
  ///         one K x V level each cannot fit in memory.
  GdnDecoder(Index B, Index H, Index G, Index K, Index V);

  /// Resumes from an exported state (GdnDecoder::state).
  /// @param state  [B,H,num_levels(tokens),K,V]  @param G query/key groups
  /// @throws std::invalid_argument naming state.tokens or state.S on a bad count or shape.
  GdnDecoder(const FenwickState<Scalar>& state, Index G);

  /// Consumes token t = tokens() of every stream and writes its output.
  ///
  /// @param q_t    [B,G,K] queries
  /// @param k_t    [B,G,K] keys
  /// @param v_t    [B,H,V] values
  /// @param g_t    [B,H] log-decay (<= 0)
  /// @param beta_t [B,H] write strength in [0, 1]
  /// @param lam_t  [B,H,L] with L >= num_levels(tokens() + 1)
  /// @param o_t    [B,H,V], overwritten with sum_l lam_t[l] S_l^T q_t
  /// @throws std::invalid_argument on a shape mismatch, non-finite input, g > 0 or beta outside
  ///         [0, 1], naming the argument; the state is unchanged then.
  void step(ConstTensorView<Scalar, 3> q_t, ConstTensorView<Scalar, 3> k_t,
            ConstTensorView<Scalar, 3> v_t, ConstTensorView<Scalar, 2> g_t,
            ConstTensorView<Scalar, 2> beta_t, ConstTensorView<Scalar, 3> lam_t,
            TensorView<Scalar, 3> o_t);

  /// Tokens consumed so far (the absolute position of the next token).
  Index tokens() const { return tokens_; }
  /// Exports the state, [B,H,num_levels(tokens),K,V].
  FenwickState<Scalar> state() const;

 private:
  Index B_, H_, G_, K_, V_;
  Index tokens_ = 0;
  std::vector<GdnFenwickHeadState<Scalar>> heads_;  // b * H + h
};

}  // namespace loglinear
