// Streaming decoder: one token at a time for B x H streams, O(L K V) memory per stream
// (SPEC.md §4). Its outputs equal recurrent_forward / chunked_forward on the whole sequence;
// its state can be exported and resumed by either form (and vice versa).
/// \file
/// \brief Streaming decoder
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/fenwick_state.hpp>

#include <vector>

namespace loglinear {

/// Autoregressive decoder of log-linear attention over B x H independent streams.
template <class Scalar>
class Decoder {
 public:
  /// Empty streams: B batches, H heads, G query/key groups (G divides H), key size K, value V.
  /// @throws std::invalid_argument if a size is < 1, G does not divide H, or B x H streams with
  ///         one K x V level each cannot fit in memory (checked before anything is allocated).
  Decoder(Index B, Index H, Index G, Index K, Index V);

  /// Resumes from an exported state (e.g. the `final` of a recurrent or chunked forward).
  /// @param state  [B,H,num_levels(tokens),K,V]; @param G query/key groups.
  Decoder(const FenwickState<Scalar>& state, Index G);

  /// Consumes token t = tokens() of every stream and writes its output.
  ///
  /// @param q_t    [B,G,K]   @param k_t [B,G,K]   @param v_t [B,H,V]
  /// @param g_t    [B,H] log-decay (<= 0)
  /// @param lam_t  [B,H,L] with L >= num_levels(tokens() + 1)
  /// @param o_t    [B,H,V], overwritten with sum_l lam_t[l] S_l^T q_t
  /// @throws std::invalid_argument on a shape mismatch, non-finite / positive-g input, or a
  ///         state that would outgrow memory; the state is unchanged then.
  void step(ConstTensorView<Scalar, 3> q_t, ConstTensorView<Scalar, 3> k_t,
            ConstTensorView<Scalar, 3> v_t, ConstTensorView<Scalar, 2> g_t,
            ConstTensorView<Scalar, 3> lam_t, TensorView<Scalar, 3> o_t);

  /// Tokens consumed so far (the absolute position of the next token).
  Index tokens() const { return tokens_; }
  /// Exports the state, [B,H,num_levels(tokens),K,V].
  FenwickState<Scalar> state() const;
  /// Bytes held by the per-level states: grows as O(log tokens), never with tokens.
  Index state_bytes() const;

 private:
  Index B_, H_, G_, K_, V_;
  Index tokens_ = 0;
  std::vector<FenwickHeadState<Scalar>> heads_;  // b * H + h
};

}  // namespace loglinear
