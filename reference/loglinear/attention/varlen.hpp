// Variable-length batches of the three CPU forms (FlashAttention's packed `cu_seqlens`
// convention): S sequences laid end to end in one B = 1 call, each with its own Fenwick tree.
// Every sequence runs through the unchanged form on a view of its token range, so no
// mathematics is repeated here; chunks start at every sequence start.
/// \file
/// \brief Variable-length (packed, `cu_seqlens`) forward and backward of the three CPU forms
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/fenwick_state.hpp>
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/inputs.hpp>

#include <vector>

namespace loglinear {

/// Optional per-sequence Fenwick states of a varlen call (recurrent and chunked forms only; the
/// naive form takes no state and refuses one). Each sequence has its own state with its own token
/// count, so a state is a vector of B = 1 FenwickState, one per sequence in cu_seqlens order.
template <class Scalar>
struct VarlenStateIO {
  /// States after earlier prefixes, one per sequence (S = cu_seqlens size - 1 of them), each with
  /// S [1,H,num_levels(tokens),K,V] ([1,H,0,K,V] when tokens == 0: start empty); nullptr starts
  /// every sequence empty. Sequence i then starts at absolute position (*initial)[i].tokens (its
  /// chunks stay aligned to that sequence's own positions), and lam needs
  /// L >= num_levels(tokens_i + n_i) for every sequence i.
  const std::vector<FenwickState<Scalar>>* initial = nullptr;
  /// If not nullptr, replaced by S states, each sequence's after its last token (it may be the
  /// vector `initial` points to: the states are replaced only once every sequence has run).
  std::vector<FenwickState<Scalar>>* final = nullptr;
};

/// Validates packed variable-length inputs and returns the length of their longest sequence.
///
/// `cu_seqlens` holds S+1 offsets with 0 = cu[0] < cu[1] < ... < cu[S] = T: sequence i is the
/// tokens [cu[i], cu[i+1]). Empty sequences (cu[i] == cu[i+1]) are refused, as every form
/// refuses T = 0. Checks: cu_seqlens has >= 2 entries, starts at 0, strictly increases and ends
/// at q's T; q has B = 1; k, v, g, lam have B = 1 and q's T; lam has L >= num_levels(longest
/// sequence) levels (only the longest sequence matters: positions restart at every sequence).
/// The remaining checks (values, G | H, shapes per token) are those of the form, run on every
/// sequence's slice by forward_varlen / backward_varlen.
/// @param in          packed inputs: q, k [1,T,G,K]; v [1,T,H,V]; g [1,T,H]; lam [1,T,H,L]
/// @param cu_seqlens  [S+1] int64 offsets of the sequences (FlashAttention convention)
/// @return the longest sequence length, max_i (cu[i+1] - cu[i])
/// @throws std::invalid_argument naming cu_seqlens, q, k, v, g or lam and what was expected.
template <class Scalar>
Index check_varlen(const AttentionInputs<Scalar>& in, ConstTensorView<Index, 1> cu_seqlens);

/// Forward of `form` over S packed sequences, each its own Fenwick tree.
///
/// Token s of sequence i contributes to token t of sequence i only, with the level ell(t, s)
/// computed from the positions within sequence i and the decay products restarting at its
/// first token: the output of sequence i equals a separate B = 1 call on its token range.
/// The chunked form aligns chunks to every sequence start (a sequence of n tokens has
/// ceil(n / C) chunks, the last one possibly short, chunk z of it holding its own positions
/// [zC, zC+C)); no chunk crosses a sequence boundary. Why: levels are computed from positions
/// within a sequence, so a chunk straddling a boundary would break SPEC.md §2's chunk property
/// (one C x C level table for every diagonal block, one level per chunk pair) and need masks in
/// the blocks and scans; aligned chunks cost at most one short chunk per sequence, and each
/// sequence is then computed exactly as a separate call (bit for bit on this CPU reference).
/// The sequences run one after another, each parallel over its heads.
/// @param form        naive, recurrent or chunked
/// @param in          packed inputs: q, k [1,T,G,K]; v [1,T,H,V]; g [1,T,H] (<= 0);
///                    lam [1,T,H,L] with L >= num_levels(longest sequence)
/// @param cu_seqlens  [S+1] int64 offsets, 0 = cu[0] < ... < cu[S] = T (check_varlen)
/// @param opts        chunk size of the chunked form (ignored by the others); clamped per
///                    sequence as in chunked_forward
/// @param o           output [1,T,H,V], overwritten
/// @param state       optional initial / final state of every sequence (VarlenStateIO); with
///                    it, sequence i equals recurrent_forward / chunked_forward on its tokens
///                    with StateIO{&(*initial)[i], &(*final)[i]}
/// @throws std::invalid_argument on bad offsets (check_varlen), bad inputs or states of any
///         sequence (the form's checks on its slice, the message naming the sequence), a wrong
///         o shape, a bad chunk size, a state count other than S, or a state with the naive form.
///         Each sequence's values are checked when its turn comes, so on such an error the
///         outputs of the sequences before it are already written (the final states are not).
template <class Scalar>
void forward_varlen(Form form, const AttentionInputs<Scalar>& in,
                    ConstTensorView<Index, 1> cu_seqlens, const ChunkedOptions& opts,
                    TensorView<Scalar, 4> o, const VarlenStateIO<Scalar>& state = {});

/// Backward of forward_varlen: overwrites `grads` with dq, dk, dv, dg, dlam of every sequence,
/// each equal to a separate B = 1 backward on its token range (so dg is 0 at every sequence's
/// first token, and levels >= num_levels(that sequence's length) get exactly zero dlam).
/// @param form        naive, recurrent or chunked
/// @param in          the forward's packed inputs, as forward_varlen
/// @param cu_seqlens  the forward's offsets, as forward_varlen
/// @param opts        the forward's chunk size (chunked form only)
/// @param dout        dL/do [1,T,H,V]
/// @param grads       dq, dk [1,T,G,K]; dv [1,T,H,V]; dg [1,T,H]; dlam [1,T,H,L], overwritten
/// @param state       the forward's state request, as forward_varlen (`final` is not written)
/// @param d_final     if not nullptr, one gradient per sequence arriving at its final state,
///                    [1,H,num_levels(tokens_i + n_i),K,V] each (as recurrent_backward's d_final)
/// @param d_initial   if not nullptr (and state.initial given), resized to S and receives
///                    dL/dS_initial of every sequence, [1,H,num_levels(tokens_i),K,V] each
/// @throws std::invalid_argument as forward_varlen, on a wrong dout / gradient shape, or a
///         d_final count other than S.
template <class Scalar>
void backward_varlen(Form form, const AttentionInputs<Scalar>& in,
                     ConstTensorView<Index, 1> cu_seqlens, const ChunkedOptions& opts,
                     ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                     const VarlenStateIO<Scalar>& state = {},
                     const std::vector<Tensor<Scalar, 5>>* d_final = nullptr,
                     std::vector<Tensor<Scalar, 5>>* d_initial = nullptr);

}  // namespace loglinear
