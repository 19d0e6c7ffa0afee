// Chunked form of log-linear Gated DeltaNet, SPEC.md §6: per chunk the WY/UT representation,
// the diagonal blocks in the materialised form, and one state scan per chunk level in which the
// delta-rule erase acts in every chunk. O(T C (C + K + V) + T log(T/C) K V) per head. The
// definition it must match is gdn_naive.hpp; its stages are in gdn_chunked_stages.hpp.
/// \file
/// \brief Chunked (WY/UT) form of log-linear Gated DeltaNet (SPEC.md §6)
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/chunked_options.hpp>
#include <loglinear/core/gdn_inputs.hpp>

namespace loglinear {

/// Chunked Gated DeltaNet forward (SPEC.md §6, stages 1-4 of gdn_chunked_stages.hpp), OpenMP
/// over batch x heads.
///
/// Per chunk: the UT transform Tut = (I + Akk)^{-1}, the diagonal block as in the materialised
/// form, the WY factors W = Tut diag(beta) K and U = Tut~ diag(beta) V, and the state-facing
/// queries q~; then per chunk level e a scan H <- exp(Gamma_z) (H - K_z^T W_z H) (+ the chunk's
/// write if z writes level e), read by the reader chunks through q~.
///
/// @param in    q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); beta [B,T,H] in [0, 1];
///              lam [B,T,H,L], L >= num_levels(T)
/// @param opts  chunk size C (a power of two, default 64); T need not be a multiple of C, and a
///              C above T is clamped to the smallest power of two >= T (ChunkedOptions)
/// @param o     output [B,T,H,V], overwritten
/// @throws std::invalid_argument on a chunk size that is not a power of two >= 1 ("chunk_size:
///         ..."), bad shapes or values (see check_gdn_inputs), a wrong o shape, or work arrays
///         that cannot fit in memory (checked before any allocation).
template <class Scalar>
void gdn_chunked_forward(const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                         TensorView<Scalar, 4> o);

/// Chunked Gated DeltaNet backward (docs/backward.md §4, eqs. 28-36): overwrites `grads` with
/// dq, dk (summed over the heads of each group), dv, dg, dbeta and dlam.
///
/// Nothing is cached by the forward: the WY/UT factors of every chunk are recomputed, and the
/// level states entering every chunk are recomputed one level at a time (O(N K V) memory per
/// head in flight, N = number of chunks). The cost stays that of the forward, about 3x.
/// @param in     the forward's inputs, as gdn_chunked_forward
/// @param opts   the chunk size, validated and clamped as in gdn_chunked_forward
/// @param dout   dL/do [B,T,H,V]
/// @param grads  dq, dk [B,T,G,K]; dv [B,T,H,V]; dg, dbeta [B,T,H]; dlam [B,T,H,L], overwritten
/// @throws std::invalid_argument on a bad chunk size, bad shapes or values, or work arrays that
///         cannot fit in memory.
template <class Scalar>
void gdn_chunked_backward(const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                          ConstTensorView<Scalar, 4> dout, const GdnGrads<Scalar>& grads);

}  // namespace loglinear
