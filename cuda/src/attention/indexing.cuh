// Index helpers shared by the kernels: offsets into the [B,T,G|H,D] layout of SPEC.md §1 and
// the chunk buffers, the Fenwick level inside a chunk (§2) and the writer / reader / reset masks
// of stage 3 (§5), where a per-chunk block works, and the eq. 5 reduction both stage-1 backward
// kernels share. One place for the index arithmetic, O(1) each; the CPU twins are
// reference/loglinear/core/tensor.hpp and the masks of attention/chunked_stages.hpp.
#pragma once

#include "params.cuh"

namespace loglinear::cuda {

/// ell(i, j) for rows j <= i of one chunk (levels 0..c are intra-chunk).
__device__ __forceinline__ int level_in_chunk(int i, int j) {
  return i == j ? 0 : 32 - __clz(i ^ j);
}
/// Chunk z of the call writes into chunk level e (bit e of its absolute index z0 + z is 0), reads
/// it (bit e is 1), and the level-e state is cleared after it when it is the last chunk of a period
/// of 2^(e+1). Absolute, because a call that continues a state (t0 = z0 C tokens before it) sits
/// inside the sequence's Fenwick tree, not at its origin; 64-bit, as t0 may exceed 2^31.
template <class P>
__device__ __forceinline__ bool is_writer(const P& p, int z, int e) { return ((p.z0 + z) >> e & 1) == 0; }
template <class P>
__device__ __forceinline__ bool is_reader(const P& p, int z, int e) { return ((p.z0 + z) >> e & 1) == 1; }
template <class P>
__device__ __forceinline__ bool is_reset(const P& p, int z, int e) {
  const long long P2 = 2LL << e;
  return (p.z0 + z) % P2 == P2 - 1;
}
/// ell(t, s) of SPEC.md §2 for absolute positions s <= t (64-bit): the level of token s seen from t.
__device__ __forceinline__ int level_of(long long t, long long s) {
  return t == s ? 0 : 64 - __clzll(static_cast<unsigned long long>(t ^ s));
}
/// The last token of bucket m of the prefix [0, t_end], or -1 if that bucket is empty: the
/// representative by which a carried level state is placed (the CPU's bucket_representative).
__device__ __forceinline__ long long bucket_representative(long long t_end, int m) {
  if (m == 0) return t_end;
  const long long h = 1LL << (m - 1);
  if (!(t_end & h)) return -1;
  return (t_end & ~(h - 1)) - 1;
}
/// The row of token t of sequence b in the [., T, ...] input arrays: b T + t for a dense batch,
/// cu[b] + t for packed sequences (ChunkedParams::cu).
template <class P>
__device__ __forceinline__ long row_of(const P& p, int b, int t) {
  return p.cu != nullptr ? long(p.cu[b]) + t : long(b) * p.T + t;
}
/// Tokens of sequence b: T for a dense batch, cu[b + 1] - cu[b] for packed sequences.
template <class P>
__device__ __forceinline__ int seq_len(const P& p, int b) {
  return p.cu != nullptr ? int(p.cu[b + 1] - p.cu[b]) : p.T;
}
/// Chunks of sequence b: N for a dense batch, ceil(seq_len / C) for packed sequences.
template <class P>
__device__ __forceinline__ int seq_chunks(const P& p, int b) {
  return p.cu != nullptr ? (seq_len(p, b) + p.C - 1) / p.C : p.N;
}
/// Offsets into q/k ([B,T,G,K]), v/o ([B,T,H,V]), g ([B,T,H]) and lam ([B,T,H,L]).
template <class P>
__device__ __forceinline__ long qk_at(const P& p, int b, int t, int gr) {
  return (row_of(p, b, t) * p.G + gr) * p.K;
}
template <class P>
__device__ __forceinline__ long v_at(const P& p, int b, int t, int h) {
  return (row_of(p, b, t) * p.H + h) * p.V;
}
template <class P>
__device__ __forceinline__ long g_at(const P& p, int b, int t, int h) {
  return row_of(p, b, t) * p.H + h;
}
template <class P>
__device__ __forceinline__ long lam_at(const P& p, int b, int t, int h) {
  return (row_of(p, b, t) * p.H + h) * p.L;
}
/// Offset of the K x V matrix of chunk z of stream bh in a [B*H, N, K, V] buffer.
template <class P>
__device__ __forceinline__ long kv_at(const P& p, int bh, int z) {
  return (long(bh) * p.N + z) * p.K * p.V;
}
/// Offset of level e's K x V state entering chunk z in the [E, B*H, N, K, V] buffer Hin.
template <class P>
__device__ __forceinline__ long hin_at(const P& p, int e, int bh, int z) {
  return ((long(e) * p.B * p.H + bh) * p.N + z) * p.K * p.V;
}

/// Where the block of a per-chunk kernel works: chunk z = blockIdx.x of stream bh = blockIdx.y
/// (batch b, head h, q/k group gr), the chunk's first row r0 and its n live rows (the last chunk
/// may be short), and gamma from row r0 on. Read with a structured binding in the kernels. With
/// packed sequences the grid has the longest sequence's N chunks for every sequence: n <= 0 marks
/// a slot past the end of a shorter one, and the kernel returns at once (its buffers' slot is
/// then never written, and the scans stop at the sequence's own chunks: seq_chunks).
struct ChunkBlock {
  int z, bh, b, h, gr, r0, n;
  const float* gam;
};
template <class In>
__device__ __forceinline__ ChunkBlock chunk_block(const ChunkedParams<In>& p) {
  const int z = blockIdx.x, bh = blockIdx.y, h = bh % p.H, r0 = z * p.C;
  const int b = bh / p.H;
  return {z, bh, b, h, h / p.heads_per_group(), r0, min(p.C, seq_len(p, b) - r0), p.gamma + long(bh) * p.T + r0};
}

/// Stage 1 backward, eq. 5 of docs/backward.md: dlam_i[l] += sum over the pairs (i, j) of level
/// l <= c of S_ij exp(gamma_i - gamma_j) dM_ij, for the n rows of one chunk; S and dM are n x n
/// lower-triangular tiles (row stride ld) in shared memory. One thread per row. Both stage-1
/// backward kernels (FFMA and tensor-core) end with it.
template <class In>
__device__ __forceinline__ void add_intra_dlam(const ChunkedParams<In>& p, int b, int h, int r0, int n,
                                               const float* gam, const float* S, const float* dM, int ld) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    float acc[7] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};  // levels 0..c, c <= 6
    for (int j = 0; j <= i; ++j) {
      const float term = S[i * ld + j] * expf(gam[i] - gam[j]) * dM[i * ld + j];
#pragma unroll
      for (int l = 0; l < 7; ++l)
        if (l == level_in_chunk(i, j)) acc[l] += term;  // compile-time indices keep acc in registers
    }
    float* dl = p.dlam + lam_at(p, b, r0 + i, h);
    // Only levels that exist in lam: C may exceed T, and the row past L belongs to the next head.
    for (int l = 0; l <= p.c && l < 7 && l < p.L; ++l) dl[l] += acc[l];
  }
}

/// Columns of the operand tiles the FFMA per-chunk kernels stage in shared memory: q, k, v and
/// dout rows are loaded kTileCols columns at a time (rows of kTileCols + 1 floats, so that a warp
/// reading one column of 32 rows hits 32 banks), which bounds shared memory for any K and V.
constexpr int kTileCols = 64;
/// Row stride of such a tile.
constexpr int kTileLd = kTileCols + 1;

/// Stages columns [c0, c0 + w) of rows r0 .. r0 + n - 1 of a [B,T,X,D] tensor (row t of head or
/// group x at offset row_at(t), D columns) into tile[i * kTileLd + c], times scale(i) when given.
/// The caller synchronises before reading it.
template <class In, class RowAt, class Scale>
__device__ __forceinline__ void stage_tile(float* tile, const In* src, RowAt row_at, int n, int c0, int w,
                                           Scale scale) {
  for (int idx = threadIdx.x; idx < n * w; idx += blockDim.x) {
    const int i = idx / w, c = idx % w;
    tile[i * kTileLd + c] = scale(i) * ldf(src, row_at(i) + c0 + c);
  }
}
/// scale(i) of stage_tile when none is wanted.
struct NoScale {
  __device__ __forceinline__ float operator()(int) const { return 1.f; }
};

}  // namespace loglinear::cuda
