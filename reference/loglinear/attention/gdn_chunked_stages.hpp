// The stages of the chunked form of log-linear Gated DeltaNet for one (batch, head), SPEC.md §6,
// numbered as the Mamba-2 stages of chunked_stages.hpp (SPEC.md §5):
//   Stage 1  intra-chunk: the materialised form of gdn_naive.cpp on each diagonal block
//   Stage 2  chunk summaries: the WY/UT representation W, U of the chunk, its write Ubar_z and
//            the state-facing queries q~
//   Stage 3  per-level state passing (writer/reader/reset), the erase acting in every chunk
//   Stage 4  off-diagonal (reader) outputs through q~
// Stages 1 and 2 share the chunk's UT transform (GdnChunkBlock), so they run chunk by chunk;
// Stages 3 and 4 run level by level. gdn_chunked.cpp strings them together. Chunks are aligned
// to token 0 (the Gated DeltaNet forms take no initial state).
/// \file
/// \brief The stages of the chunked form of log-linear Gated DeltaNet for one (batch, head)
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/chunked_stages.hpp>

#include <vector>

namespace loglinear {

/// Per-head views of the Gated DeltaNet inputs: HeadInputs (q, k [T,K], v [T,V], lam [T,L],
/// g [T]) plus beta [T]. Aggregate: `GdnHeadInputs<Scalar>{{q, k, v, lam, g}, beta}`.
template <class Scalar>
struct GdnHeadInputs : HeadInputs<Scalar> {
  ConstVectorMap<Scalar> beta;  ///< [T] write strengths, in [0, 1]
};

/// Per-head gradient outputs of the Gated DeltaNet backward stages: HeadGrads plus dbeta.
/// Every stage adds into them.
template <class Scalar>
struct GdnHeadGrads : HeadGrads<Scalar> {
  VectorMap<Scalar> dbeta;  ///< [T]
};

/// The quantities of one chunk that Stages 1 and 2 (and their backward) share. Local rows
/// i, j = 0 .. n-1 are the head's rows r0 .. r0+n-1.
template <class Scalar>
struct GdnChunkBlock {
  Index r0 = 0;            ///< first row of the chunk
  Index n = 0;             ///< live rows (the last chunk may be short)
  RowMatrix<Scalar> Tut;   ///< the UT transform (I + Akk)^{-1}, n x n, unit lower triangular (SPEC.md §6)
  RowMatrix<Scalar> D;     ///< D^loc_ij = exp(gamma_i - gamma_j) for j <= i, 0 above; n x n
  RowMatrix<Scalar> S;     ///< tril(Q_z K_z^T), diagonal included; n x n
};

/// The UT transform of chunk z and its companions (SPEC.md §6): Akk_ij = beta_i (k_i . k_j) for
/// i > j, Tut = (I + Akk)^{-1} by forward substitution (unit_lower_inverse), the local decays D
/// and the scores S.
/// @param x      the head's inputs
/// @param gamma  chunk_local_cumsum of x.g
/// @param lay    the chunk layout (t0 = 0)
/// @param z      the chunk
/// @return       the chunk's block
template <class Scalar>
GdnChunkBlock<Scalar> gdn_chunk_block(const GdnHeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                                      const ChunkLayout& lay, Index z);

/// Stage 1 for one chunk: the materialised form restricted to the diagonal block,
/// o_z = ([S Tut] ⊙ H^loc ⊙ D) diag(beta) V_z with H^loc_ij = lam_i[LUT[i][j]]. Overwrites the
/// chunk's rows of o.
/// @param x    the head's inputs
/// @param blk  gdn_chunk_block of the chunk
/// @param lay  the chunk layout
/// @param lut  level_table(lay.C)
/// @param o    the head's output [T,V]
template <class Scalar>
void gdn_stage1_intra_forward(const GdnHeadInputs<Scalar>& x, const GdnChunkBlock<Scalar>& blk,
                              const ChunkLayout& lay, const std::vector<int>& lut,
                              MatrixMap<Scalar> o);

/// The WY/UT representation of every chunk of one head (Stage 2's result), or the gradients
/// with respect to it (same shapes) in the backward.
template <class Scalar>
struct GdnChunkSummaries {
  /// [T,K]; rows of chunk z: W_z = Tut_z diag(beta) K_z (no decay), so that the chunk's
  /// transitions multiply to exp(Gamma_z) (I - K_z^T W_z)
  RowMatrix<Scalar> W;
  /// [T,K]; row t = zC + i: q~_t = exp(gamma_i) (q_t - sum_{j<=i} (q_t . k_j) w_j), the query
  /// carried back to the chunk's start through the chunk's transitions up to t
  RowMatrix<Scalar> Qt;
  /// one K x V per chunk: Ubar_z = sum_j exp(Gamma_z - gamma_j) k_j u_j^T, the chunk's writes
  /// carried to its end, with U_z = Tut~_z diag(beta) V_z
  std::vector<RowMatrix<Scalar>> Ubar;

  /// Zero-filled storage for T tokens in `chunks` chunks.
  /// @param T tokens @param K key size @param V value size @param chunks number of chunks
  GdnChunkSummaries(Index T, Index K, Index V, Index chunks)
      : W(RowMatrix<Scalar>::Zero(T, K)),
        Qt(RowMatrix<Scalar>::Zero(T, K)),
        Ubar(chunks, RowMatrix<Scalar>::Zero(K, V)) {}
};

/// Stage 2 for one chunk: its rows of W and Qt and its Ubar (see GdnChunkSummaries), with
/// Tut~ = Tut ⊙ D (docs/backward.md eq. 28).
/// @param x      the head's inputs
/// @param gamma  chunk_local_cumsum of x.g
/// @param blk    gdn_chunk_block of the chunk
/// @param lay    the chunk layout
/// @param sums   the head's summaries; the chunk's parts are overwritten
template <class Scalar>
void gdn_stage2_chunk_summary(const GdnHeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                              const GdnChunkBlock<Scalar>& blk, const ChunkLayout& lay,
                              GdnChunkSummaries<Scalar>& sums);

/// Stage 3: the level-e state entering every chunk, Hin[z] (K x V each; index 0 = chunk 0).
/// H <- 0; per chunk: Hin[z] = H; H = reset(z) ? 0 : exp(Gamma_z) (H - K_z^T (W_z H));
/// writer(z): H += Ubar_z. Unlike Mamba-2 the erase K_z^T W_z acts in every chunk, reader or
/// writer: every stored write still travels through all later transitions.
/// @param x      the head's inputs (k)
/// @param sums   Stage 2's summaries
/// @param gamma  chunk_local_cumsum of x.g
/// @param lay    the chunk layout
/// @param e      the chunk level (token level c + 1 + e)
/// @return       Hin, one K x V per chunk
template <class Scalar>
std::vector<RowMatrix<Scalar>> gdn_stage3_level_states(const GdnHeadInputs<Scalar>& x,
                                                       const GdnChunkSummaries<Scalar>& sums,
                                                       const Vector<Scalar>& gamma,
                                                       const ChunkLayout& lay, int e);

/// Stage 4: for every reader chunk z of level e and row t of z, o_t += lam_t[c+1+e] Hin[z]^T q~_t.
/// @param x     the head's inputs (lam)
/// @param sums  Stage 2's summaries (Qt)
/// @param Hin   gdn_stage3_level_states of the same level
/// @param lay   the chunk layout
/// @param e     the chunk level
/// @param o     the head's output [T,V], added to
template <class Scalar>
void gdn_stage4_level_output(const GdnHeadInputs<Scalar>& x, const GdnChunkSummaries<Scalar>& sums,
                             const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                             int e, MatrixMap<Scalar> o);

/// Stages 3-4 backward for chunk level e (docs/backward.md eqs. 29-31): reverse scan of the
/// state gradient over the chunks. Readers add to dsums.Qt and dlam[c+1+e]; writers add the
/// gradient of the state leaving them to dsums.Ubar[z]; the erase adds to dsums.W and dk.
/// @param x      the head's inputs
/// @param sums   Stage 2's summaries
/// @param gamma  chunk_local_cumsum of x.g
/// @param Hin    gdn_stage3_level_states of the same level
/// @param lay    the chunk layout
/// @param e      the chunk level
/// @param dout   the head's output gradient [T,V]
/// @param dsums  gradients with respect to sums, added to
/// @param grads  the head's gradients (dk, dlam), added to
template <class Scalar>
void gdn_stage34_level_backward(const GdnHeadInputs<Scalar>& x, const GdnChunkSummaries<Scalar>& sums,
                                const Vector<Scalar>& gamma,
                                const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                                int e, const ConstMatrixMap<Scalar>& dout,
                                GdnChunkSummaries<Scalar>& dsums, GdnHeadGrads<Scalar>& grads);

/// Stages 1-2 backward for one chunk (docs/backward.md eqs. 32-35 with eqs. 19-24 on the block):
/// from the chunk's output gradient (Stage 1) and the gradients of its W, Qt and Ubar (collected
/// over every level), adds to dq, dk, dv, dbeta and dlam[0..c] of its rows, through the one
/// backward of its UT inverse.
/// @param x      the head's inputs
/// @param gamma  chunk_local_cumsum of x.g
/// @param blk    gdn_chunk_block of the chunk
/// @param lay    the chunk layout
/// @param lut    level_table(lay.C)
/// @param sums   Stage 2's summaries (W)
/// @param dsums  their gradients, complete (every level's scan done)
/// @param dout   the head's output gradient [T,V]
/// @param grads  the head's gradients, added to
template <class Scalar>
void gdn_stage12_chunk_backward(const GdnHeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                                const GdnChunkBlock<Scalar>& blk, const ChunkLayout& lay,
                                const std::vector<int>& lut, const GdnChunkSummaries<Scalar>& sums,
                                const GdnChunkSummaries<Scalar>& dsums,
                                const ConstMatrixMap<Scalar>& dout, GdnHeadGrads<Scalar>& grads);

}  // namespace loglinear
