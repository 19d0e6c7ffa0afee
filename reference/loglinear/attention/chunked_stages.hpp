// The four numbered stages of the chunked form for one (batch, head), SPEC.md §5:
//   Stage 1  intra-chunk dense blocks        Stage 3  per-level state passing (writer/reader/reset)
//   Stage 2  chunk summaries U_z             Stage 4  off-diagonal (reader) outputs
// plus the terms of an initial / final Fenwick state. chunked.cpp strings them together;
// cuda/src/ names its kernels after the same stages.
/// \file
/// \brief The four numbered stages of the chunked form for one (batch, head), SPEC.md §5
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>

#include <algorithm>
#include <vector>

namespace loglinear {

/// Where each chunk lies. Chunks are aligned to absolute positions (chunk z covers absolute
/// tokens [zC, zC+C)) so that the chunk property of SPEC.md §2 holds also when a call resumes
/// at an unaligned position t0; the call's own rows are local indices 0..T-1.
struct ChunkLayout {
  Index T = 0;        ///< tokens of this call
  Index t0 = 0;       ///< absolute position of local row 0
  Index C = 0;        ///< chunk size, a power of two
  int c = 0;          ///< log2 C; levels 0..c are intra-chunk
  int levels = 0;     ///< num_levels(t0 + T)
  Index z_first = 0;  ///< absolute index of the first chunk
  Index z_last = 0;   ///< absolute index of the last chunk

  /// Layout of T tokens starting at absolute position t0 with chunk size C.
  ChunkLayout(Index T, Index t0, Index C);
  /// First local row of chunk z.
  Index begin(Index z) const { return std::max(z * C, t0) - t0; }
  /// One past the last local row of chunk z (a last chunk may be short).
  Index end(Index z) const { return std::min(z * C + C, t0 + T) - t0; }
  /// Position inside its chunk of chunk z's first live row (non-zero only for a resumed call).
  Index offset(Index z) const { return begin(z) + t0 - z * C; }
  /// Number of chunk levels E: the token levels c+1 .. levels-1.
  int chunk_levels() const { return std::max(0, levels - c - 1); }
};

/// Per-head views of the inputs: q, k [T,K], v [T,V], g [T], lam [T,L].
template <class Scalar>
struct HeadInputs {
  ConstMatrixMap<Scalar> q;    ///< [T,K], row t is token t
  ConstMatrixMap<Scalar> k;    ///< [T,K]
  ConstMatrixMap<Scalar> v;    ///< [T,V]
  ConstMatrixMap<Scalar> lam;  ///< [T,L]
  ConstVectorMap<Scalar> g;             ///< log-decay per token
};

/// Chunk-local inclusive cumsum of g: gamma_r = sum of g over the live rows of r's chunk up to
/// and including r (SPEC.md §5). Every exponent used by the stages is then <= 0.
template <class Scalar>
Vector<Scalar> chunk_local_cumsum(const ConstVectorMap<Scalar>& g, const ChunkLayout& lay);

/// Stage 1: o_r = sum_{j<=i in the chunk} (q_r.k_j) exp(gamma_r - gamma_j) lam_r[LUT[i][j]] v_j.
/// Overwrites o ([T,V]). `lut` is level_table(C).
template <class Scalar>
void stage1_intra_forward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                          const ChunkLayout& lay, const std::vector<int>& lut, MatrixMap<Scalar> o);

/// Stage 2: U_z = sum_j exp(Gamma_z - gamma_j) k_j v_j^T (K x V) for every chunk, decayed to
/// the chunk's last live row. Index 0 of the result is chunk z_first.
template <class Scalar>
std::vector<RowMatrix<Scalar>> stage2_chunk_summaries(const HeadInputs<Scalar>& x,
                                                      const Vector<Scalar>& gamma,
                                                      const ChunkLayout& lay);

/// True if chunk z writes into chunk level e (bit e of z is 0), SPEC.md §5 Stage 3.
inline bool is_writer(Index z, int e) { return ((z >> e) & 1) == 0; }
/// True if chunk z reads chunk level e (bit e of z is 1).
inline bool is_reader(Index z, int e) { return ((z >> e) & 1) == 1; }
/// True if the level-e state is cleared after chunk z (last chunk of a period of 2^(e+1)).
inline bool is_reset(Index z, int e) {
  const Index P = Index{2} << e;
  return z % P == P - 1;
}

/// Stage 3: the level-e state entering every chunk, Hin[z] (K x V each; index 0 = z_first).
/// H <- 0; per chunk: Hin[z] = H; H = reset(z) ? 0 : exp(Gamma_z) H; writer(z): H += U_z.
template <class Scalar>
std::vector<RowMatrix<Scalar>> stage3_level_states(const std::vector<RowMatrix<Scalar>>& U,
                                                   const Vector<Scalar>& gamma,
                                                   const ChunkLayout& lay, int e);

/// Stage 4: for every reader chunk z of level e and row r of z,
/// o_r += lam_r[c+1+e] exp(gamma_r) Hin[z]^T q_r.
template <class Scalar>
void stage4_level_output(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                         const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                         int e, MatrixMap<Scalar> o);

/// Output of an initial state S0 (levels of the prefix ending at t0-1): for every row t,
/// o_t += exp(sum_{r=t0..t} g_r) sum_m lam_t[ell(t, rep_m)] S0[m]^T q_t, where rep_m is any
/// token of the prefix's bucket m (the level is the same for all of them). O(T L K V).
template <class Scalar>
void initial_state_output(const HeadInputs<Scalar>& x, const std::vector<RowMatrix<Scalar>>& S0,
                          Index t0, MatrixMap<Scalar> o);

/// The Fenwick state after the call's last token tf = t0+T-1: level l receives the new tokens
/// of bucket B_l(tf) decayed to tf, and every initial level m lands whole in level ell(tf, rep_m).
template <class Scalar>
std::vector<RowMatrix<Scalar>> final_state(const HeadInputs<Scalar>& x,
                                           const std::vector<RowMatrix<Scalar>>& S0, Index t0);

/// Per-head gradient outputs of the backward stages (all of them add into their targets).
template <class Scalar>
struct HeadGrads {
  MatrixMap<Scalar> dq;      ///< [T,K], this head's own dq (summed over the group by for_each_head_shared_qk)
  MatrixMap<Scalar> dk;      ///< [T,K], this head's own dk (summed over the group by for_each_head_shared_qk)
  MatrixMap<Scalar> dv;      ///< [T,V]
  MatrixMap<Scalar> dlam;    ///< [T,L]
};

/// Stage 1 backward (docs/backward.md §3, eqs. 1-5 restricted to each diagonal block): adds the
/// intra-chunk parts of dq, dk, dv and dlam (levels 0..c).
template <class Scalar>
void stage1_intra_backward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                           const ChunkLayout& lay, const std::vector<int>& lut,
                           const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& grads);

/// Stages 3-4 backward for chunk level e (docs/backward.md §3, eqs. 14-18): reverse scan of the
/// state gradient dH over the chunks. Readers add to dq and dlam[c+1+e]; writers add the gradient
/// of the state leaving them to dU[z], the gradient of their chunk summary U_z (one K x V per
/// chunk, index 0 = z_first), which every level a chunk writes into shares.
/// `Hin` is stage3_level_states of the same level.
template <class Scalar>
void stage34_level_backward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                            const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                            int e, const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& grads,
                            std::vector<RowMatrix<Scalar>>& dU);

/// Stage 2 backward (eq. 15): from dU_z, adds exp(Gamma_z - gamma_j) dU_z v_j to dk_j and
/// exp(Gamma_z - gamma_j) dU_z^T k_j to dv_j. Done once for all levels, which is why the level
/// scans collect dU instead of touching dk, dv themselves.
template <class Scalar>
void stage2_summaries_backward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                               const ChunkLayout& lay, const std::vector<RowMatrix<Scalar>>& dU,
                               HeadGrads<Scalar>& grads);

/// Backward of initial_state_output: adds to dq, dlam and to dS0 (one K x V per initial level).
template <class Scalar>
void initial_state_output_backward(const HeadInputs<Scalar>& x,
                                   const std::vector<RowMatrix<Scalar>>& S0, Index t0,
                                   const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& grads,
                                   std::vector<RowMatrix<Scalar>>& dS0);

/// Backward of final_state given dF (one K x V per final level): adds to dk, dv and dS0, and
/// returns sum_l <dF_l, S_final_l>, the gradient w.r.t. the call's last cumulative log-decay.
template <class Scalar>
Scalar final_state_backward(const HeadInputs<Scalar>& x, const std::vector<RowMatrix<Scalar>>& S0,
                            Index t0, const std::vector<RowMatrix<Scalar>>& dF,
                            HeadGrads<Scalar>& grads, std::vector<RowMatrix<Scalar>>& dS0);

/// dg from the identities of SPEC.md §3.1 (docs/backward.md eqs. 9-10):
/// dg_t = sum_{u>=t} (sum_l lam_u[l] dlam_u[l] - <v_u, dv_u>) + dG_last [u = T-1].
/// sum_l lam dlam equals <dout_u, o_u> (eq. 9), so the forward output is never recomputed; dlam
/// and dv must be complete (every stage and state term added). If `first_is_origin` (no
/// initial state), dg_0 = 0 exactly because g_0 is never applied to anything.
template <class Scalar>
void decay_gradient(const ConstMatrixMap<Scalar>& lam, const MatrixMap<Scalar>& dlam,
                    const ConstMatrixMap<Scalar>& v, const MatrixMap<Scalar>& dv, Scalar dG_last,
                    bool first_is_origin, VectorMap<Scalar> dg);

/// A representative token of bucket m of the prefix [0, t_end] (its last token), or -1 if the
/// bucket is empty.
Index bucket_representative(Index t_end, int m);

}  // namespace loglinear
