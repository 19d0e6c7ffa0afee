// Context parallelism (docs/context_parallel.md): one sequence split across R ranks at chunk
// boundaries, each rank running the chunked form on its own segment. A rank needs the per-level
// Fenwick states of everything before it; for scalar decay the map from a segment's incoming
// states to its outgoing ones is linear (a per-head decay and a merge pattern set by the token
// positions, eq. 3), so one all-gather of every segment's (contribution, decay) gives every rank
// its incoming state (eq. 5), and one all-gather of every segment's state gradient gives every
// rank the gradient arriving at its outgoing state (eq. 8).
/// \file
/// \brief Context parallelism: the chunked form of one sequence split over the ranks of a Communicator
/// \ingroup floor_context_parallel
#pragma once

#include <loglinear/attention/chunked_options.hpp>
#include <loglinear/attention/fenwick_state.hpp>
#include <loglinear/context_parallel/communicator.hpp>
#include <loglinear/core/inputs.hpp>

#include <vector>

namespace loglinear {

/// Tokens [begin, end) of one rank's segment, relative to the call's first token.
struct Segment {
  Index begin = 0;  ///< first token of the segment
  Index end = 0;    ///< one past its last token (begin == end: an empty segment)
};

/// Rank r's segment of a sequence of T tokens split over R ranks: the N = ceil(T / C) chunks are
/// dealt in contiguous runs, rank r taking chunks [floor(r N / R), floor((r+1) N / R)), so every
/// boundary but the sequence's end is a multiple of C, the runs differ by at most one chunk, and
/// any R >= 1 works (ranks beyond N get empty segments).
/// @param T  tokens of the whole call, >= 1
/// @param C  chunk size, a power of two >= 1 (the caller's clamped chunk size)
/// @param R  ranks >= 1;  @param r  0 <= r < R
/// @throws std::invalid_argument on T < 1, a bad C, R < 1 or r outside [0, R).
Segment cp_segment(Index T, Index C, int R, int r);

/// The transition of a Fenwick state across tokens [n, n_out) (docs/context_parallel.md eq. 3):
/// adds exp(log_decay[b,h]) * S_in[b,h,l] to S_out[b,h,m(l)] for every non-empty bucket l of
/// B(n - 1), where m(l) = level(n_out - 1, first token of that bucket). Buckets only merge as
/// tokens arrive, so each incoming bucket lands whole in one outgoing level.
/// @param in         state after n tokens, S [B,H,num_levels(n),K,V] (nothing to do if n == 0)
/// @param log_decay  [B,H]: the sum of g over tokens [n, n_out) of each head
/// @param out        state after n_out >= n tokens, S [B,H,num_levels(n_out),K,V]; added to
template <class Scalar>
void fenwick_transition(const FenwickState<Scalar>& in, ConstTensorView<Scalar, 2> log_decay,
                        FenwickState<Scalar>& out);

/// The transpose of fenwick_transition (eq. 7): adds exp(log_decay[b,h]) * d_out[b,h,m(l)] to
/// d_in[b,h,l] for every non-empty bucket l of B(n_in - 1).
/// @param d_out   gradient at the state after n_out tokens, [B,H,num_levels(n_out),K,V]
/// @param n_in    tokens before the segment
/// @param n_out   tokens after it (n_in <= n_out)
/// @param log_decay  [B,H]: the sum of g over tokens [n_in, n_out) of each head
/// @param d_in    gradient at the state after n_in tokens, [B,H,num_levels(n_in),K,V]; added to
template <class Scalar>
void fenwick_transition_transpose(const Tensor<Scalar, 5>& d_out, Index n_in, Index n_out,
                                  ConstTensorView<Scalar, 2> log_decay, Tensor<Scalar, 5>& d_in);

/// The chunked calls context parallelism makes on a rank's segment: the forward and the backward
/// with a carried state (the StateIO of loglinear::chunked_forward / chunked_backward). One
/// algorithm thus runs on the CPU forms (CpuChunkedEngine, the default) and on the CUDA kernels
/// (loglinear::cuda::CudaChunkedEngine, cuda/loglinear/cuda/context_parallel.hpp).
template <class Scalar>
class ChunkedEngine {
 public:
  virtual ~ChunkedEngine() = default;
  /// As loglinear::chunked_forward(in, opts, o, io).
  virtual void forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts, TensorView<Scalar, 4> o,
                       const FenwickState<Scalar>* initial, FenwickState<Scalar>* final) const = 0;
  /// As loglinear::chunked_backward(in, opts, dout, grads, {initial, nullptr}, d_final, d_initial).
  virtual void backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                        ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                        const FenwickState<Scalar>* initial, const Tensor<Scalar, 5>* d_final,
                        Tensor<Scalar, 5>* d_initial) const = 0;
};

/// The CPU chunked form (reference/loglinear/attention/chunked.hpp) as a ChunkedEngine.
template <class Scalar>
class CpuChunkedEngine final : public ChunkedEngine<Scalar> {
 public:
  void forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts, TensorView<Scalar, 4> o,
               const FenwickState<Scalar>* initial, FenwickState<Scalar>* final) const override;
  void backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts, ConstTensorView<Scalar, 4> dout,
                const AttentionGrads<Scalar>& grads, const FenwickState<Scalar>* initial,
                const Tensor<Scalar, 5>* d_final, Tensor<Scalar, 5>* d_initial) const override;
};

/// What cp_forward leaves for cp_backward on one rank.
template <class Scalar>
struct CpContext {
  Segment segment;                  ///< this rank's tokens of the call
  std::vector<Index> starts;        ///< R+1 absolute token counts: rank j's segment is [starts[j], starts[j+1])
  std::vector<Scalar> log_decays;   ///< R x [B,H]: the sum of g over each rank's segment
  FenwickState<Scalar> incoming;    ///< the state this rank's segment continues from (eq. 5)
  FenwickState<Scalar> final_state; ///< the state after the whole call (the same on every rank)
  Index B = 0;                      ///< sequences of the call
  Index H = 0;                      ///< heads
  Index K = 0;                      ///< key size
  Index V = 0;                      ///< value size
};

/// Forward of one sequence split over the ranks of `comm` (a collective: every rank calls it).
///
/// Rank r passes its segment's inputs, cp_segment(T, C', R, r) of the whole call's tokens with
/// C' = effective_chunk_size(opts.chunk_size, t0 + T); every rank passes the same T, options and
/// initial state. Each rank computes its segment's contribution (its final state when started
/// from zero at its position) and decay, all-gathers them, folds them into its incoming state
/// (eq. 5) and runs the chunked form from it. Cost per rank: two chunked forwards of its segment
/// and one all-gather of R x B H L K V scalars.
/// @param comm     the ranks
/// @param segment  this rank's inputs: q, k [B,n_r,G,K]; v [B,n_r,H,V]; g [B,n_r,H]; lam
///                 [B,n_r,H,L] with L >= num_levels(t0 + T) (n_r may be 0: an empty segment)
/// @param T        tokens of the whole call (the sum of every rank's n_r)
/// @param opts     chunk size (as chunked_forward)
/// @param o        this rank's output [B,n_r,H,V], overwritten
/// @param initial  the state the whole call continues from (nullptr: empty), the same on every rank
/// @param engine   the chunked calls on the segment (nullptr: the CPU chunked form)
/// @return the context cp_backward needs, with the final state of the whole call
/// @throws std::invalid_argument on every rank if any rank's inputs are bad or the ranks disagree
///         on the sizes, T, chunk size or initial state; the message names the rank and the argument.
template <class Scalar>
CpContext<Scalar> cp_forward(const Communicator& comm, const AttentionInputs<Scalar>& segment, Index T,
                             const ChunkedOptions& opts, TensorView<Scalar, 4> o,
                             const FenwickState<Scalar>* initial = nullptr,
                             const ChunkedEngine<Scalar>* engine = nullptr);

/// Backward of cp_forward (a collective). Each rank computes the gradient at its incoming state
/// from its own outputs alone, all-gathers them, folds them from the last rank down through the
/// transposed transitions (eq. 8) to get the gradient arriving at its outgoing state, and runs the
/// chunked backward with it. Cost per rank: two chunked backwards and one all-gather.
/// @param comm       the ranks (the same as cp_forward's)
/// @param ctx        what cp_forward returned on this rank
/// @param segment    this rank's inputs, as cp_forward
/// @param opts       the options cp_forward was given
/// @param dout       dL/do of this rank's outputs [B,n_r,H,V]
/// @param grads      dq, dk, dv, dg, dlam of this rank's inputs, overwritten
/// @param d_final    gradient at the whole call's final state, [B,H,num_levels(t0+T),K,V], the
///                   same on every rank (nullptr: none)
/// @param d_initial  if not nullptr, receives the gradient at the whole call's initial state
///                   (on every rank; [B,H,num_levels(t0),K,V])
/// @param engine     the chunked calls on the segment, as cp_forward's (nullptr: the CPU form)
/// @throws std::invalid_argument on every rank as cp_forward.
template <class Scalar>
void cp_backward(const Communicator& comm, const CpContext<Scalar>& ctx, const AttentionInputs<Scalar>& segment,
                 const ChunkedOptions& opts, ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                 const Tensor<Scalar, 5>* d_final = nullptr, Tensor<Scalar, 5>* d_initial = nullptr,
                 const ChunkedEngine<Scalar>* engine = nullptr);

}  // namespace loglinear
