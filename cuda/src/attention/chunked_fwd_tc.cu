// Tensor-core forward of the chunked form for bf16 storage (SPEC.md §5), stage numbers of
// reference/loglinear/attention/chunked_stages.hpp; same cost as the FFMA twin
// chunked_fwd_ffma.cu, whose stage-3 scan it shares. The two block-GEMM stages run on tensor cores:
//   stage 2   U_z = (f ⊙ K_z)^T V_z                          K x V = (K x C)(C x V)
//   stage 1+4 O_z = (S_z ⊙ M_z) V_z + sum_e (W_e ⊙ Q_z) Hin_e  C x V, fused in one block so the
//             chunk's output tile stays in registers between the intra-chunk and level parts
//             (no write of O after stage 1 and read-modify-write in stage 4).
// Stage 3 (the level-state scan) is elementwise and stays the float32 kernel of chunked_fwd_ffma.cu.
//
// Why WMMA (mma.sync through nvcuda::wmma, bf16 16x16x16, float32 accumulators) and not wgmma:
// the tiles here are small (C <= 64 rows) and there are many independent blocks (one per chunk,
// sequence and head), so a warp-level MMA per 16x16 tile already has plenty of parallelism;
// wgmma needs warpgroup-wide 64-row tiles, sm_90a and shared-memory descriptors, which would make
// this reference kernel much harder to read for a gain that the level-state scan (memory-bound)
// and the FFMA backward bound anyway. Operands in bf16, products accumulated in float32: the
// computed operands (masked scores P, scaled rows, states Hin) are carried as hi + lo bf16 pairs
// (wmma_tiles.cuh, split_bf16), so the error left is the bf16 rounding of q, k, v themselves.
#include "../cuda_check.cuh"
#include "launch.cuh"
#include "wmma_tiles.cuh"

namespace loglinear::cuda {

namespace {

using namespace tc;
// At most (C/16) x (V/16) = 4 x 8 output tiles of 16 x 16 per chunk, kWarps warps: 4 per warp.
constexpr int kMaxTilesPerWarp = 4;

// Stage 2 on tensor cores: U_z = sum_j f_j k_j v_j^T with f_j = exp(Gamma_z - gamma_j).
__global__ void __launch_bounds__(kThreads) chunked_fwd_stage2_summaries_tc(ChunkedParams<bf16> p) {
  extern __shared__ __align__(128) unsigned char smem[];
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int ldk = p.K + kPadH, ldv = p.V + kPadH;
  bf16* kf = reinterpret_cast<bf16*>(smem);                                        // C x ldk, hi
  bf16* kf_lo = kf + p.C * ldk;                                                    // C x ldk, lo
  bf16* vs = reinterpret_cast<bf16*>(smem + align128(size_t(p.C) * ldk * 2 * 2));  // C x ldv
  const float Gamma = gam[n - 1];
  stage_decayed_rows(kf, kf_lo, ldk, p.k + qk_at(p, b, r0, gr), long(p.G) * p.K, p.K, p.C, n, gam, Gamma);
  stage_rows(vs, ldv, p.v + v_at(p, b, r0, h), long(p.H) * p.V, p.V, p.C, n);
  __syncthreads();  // both operands staged before any warp reads another warp's rows
  const int warp = threadIdx.x / 32, tiles_v = p.V / 16, tiles = (p.K / 16) * tiles_v;
  for (int t = warp; t < tiles; t += kWarps) {
    const int ti = t / tiles_v, tj = t % tiles_v;
    FragC acc;
    wmma::fill_fragment(acc, 0.f);
    for (int j0 = 0; j0 < p.C; j0 += 16) {
      // (f ⊙ K)^T: element (kk, j) is kf[j][kk], a column-major view of kf
      const int at = j0 * ldk + ti * 16;
      mma_split<FragAt, FragB>(acc, kf + at, kf_lo + at, ldk, vs + j0 * ldv + tj * 16, nullptr, ldv);
    }
    wmma::store_matrix_sync(p.U + kv_at(p, bh, z) + long(ti) * 16 * p.V + tj * 16, acc, p.V, wmma::mem_row_major);
  }
}

// Byte offsets of the output kernel's shared-memory tiles (one place, used by kernel and launcher).
struct OutputSmem {
  int ldk, ldv, ldc, ldp, ldo;
  size_t qs, ks, vs, sf, ps, hs, qw, os, total;
  __host__ __device__ OutputSmem(int C, int K, int V)
      : ldk(K + kPadH), ldv(V + kPadH), ldc(C + kPadF), ldp(C + kPadH), ldo(V + kPadF) {
    qs = 0;                                            // Q_z          C x K bf16
    ks = qs + align128(size_t(C) * ldk * 2);           // K_z          C x K bf16
    vs = ks + align128(size_t(C) * ldk * 2);           // V_z          C x V bf16
    sf = vs + align128(size_t(C) * ldv * 2);           // S = Q K^T    C x C float
    ps = sf + align128(size_t(C) * ldc * 4);           // P = S ⊙ M    C x C bf16, hi then lo
    hs = ps + align128(size_t(C) * ldp * 2 * 2);       // Hin_e        K x V bf16, hi then lo
    qw = hs + align128(size_t(K) * ldv * 2 * 2);       // W_e ⊙ Q_z    C x K bf16, hi then lo
    total = qw + align128(size_t(C) * ldk * 2 * 2);
    // O staging (C x V float) reuses Q_z and K_z, which are dead by then, when they are large enough.
    if (align128(size_t(C) * ldk * 2) * 2 >= size_t(C) * ldo * 4) {
      os = qs;
    } else {
      os = total;
      total += align128(size_t(C) * ldo * 4);
    }
  }
};

// Stages 1 and 4 fused: the chunk's output tile, intra-chunk part then every reader level.
__global__ void __launch_bounds__(kThreads) chunked_fwd_stage14_output_tc(ChunkedParams<bf16> p) {
  extern __shared__ __align__(128) unsigned char smem[];
  const OutputSmem L(p.C, p.K, p.V);
  bf16 *qs = reinterpret_cast<bf16*>(smem + L.qs), *ks = reinterpret_cast<bf16*>(smem + L.ks),
       *vs = reinterpret_cast<bf16*>(smem + L.vs), *ps = reinterpret_cast<bf16*>(smem + L.ps),
       *hs = reinterpret_cast<bf16*>(smem + L.hs), *qw = reinterpret_cast<bf16*>(smem + L.qw);
  float *sf = reinterpret_cast<float*>(smem + L.sf), *os = reinterpret_cast<float*>(smem + L.os);
  bf16 *ps_lo = ps + p.C * L.ldp, *hs_lo = hs + p.K * L.ldv, *qw_lo = qw + p.C * L.ldk;
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int C = p.C;
  stage_rows(qs, L.ldk, p.q + qk_at(p, b, r0, gr), long(p.G) * p.K, p.K, C, n);
  stage_rows(ks, L.ldk, p.k + qk_at(p, b, r0, gr), long(p.G) * p.K, p.K, C, n);
  stage_rows(vs, L.ldv, p.v + v_at(p, b, r0, h), long(p.H) * p.V, p.V, C, n);
  __syncthreads();  // Q, K, V staged

  // Stage 1a: S = Q K^T, lower-triangular 16 x 16 tiles only (the mask zeroes the rest).
  const int warp = threadIdx.x / 32, tc = C / 16;
  for (int t = warp; t < tc * tc; t += kWarps) {
    const int ti = t / tc, tj = t % tc;
    if (tj > ti) continue;
    FragC acc;
    wmma::fill_fragment(acc, 0.f);
    for (int k0 = 0; k0 < p.K; k0 += 16) {
      // K^T: element (kk, j) is ks[j][kk], a column-major view of ks
      mma_split<FragA, FragBt>(acc, qs + ti * 16 * L.ldk + k0, nullptr, L.ldk, ks + tj * 16 * L.ldk + k0, nullptr,
                               L.ldk);
    }
    wmma::store_matrix_sync(sf + ti * 16 * L.ldc + tj * 16, acc, L.ldc, wmma::mem_row_major);
  }
  __syncthreads();  // S complete
  // Stage 1b: P = S ⊙ M, M_ij = exp(gamma_i - gamma_j) lam_i[ell(i, j)] for j <= i < n, else 0.
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx % C;
    float m = 0.f;
    if (j <= i && i < n)
      m = sf[i * L.ldc + j] * expf(gam[i] - gam[j]) * p.lam[lam_at(p, b, r0 + i, h) + level_in_chunk(i, j)];
    split_bf16(m, ps, ps_lo, i * L.ldp + j);
  }
  __syncthreads();  // P complete

  // Stage 1c: O = P V, each warp owning up to kMaxTilesPerWarp output tiles in registers.
  const int tv = p.V / 16, tiles = tc * tv;
  FragC acc[kMaxTilesPerWarp];
#pragma unroll
  for (int u = 0; u < kMaxTilesPerWarp; ++u) {
    wmma::fill_fragment(acc[u], 0.f);
    const int t = warp + u * kWarps;
    if (t >= tiles) continue;
    const int ti = t / tv, tj = t % tv;
    for (int j0 = 0; j0 <= ti * 16; j0 += 16) {  // P is zero right of the diagonal tile
      const int at = ti * 16 * L.ldp + j0;
      mma_split<FragA, FragB>(acc[u], ps + at, ps_lo + at, L.ldp, vs + j0 * L.ldv + tj * 16, nullptr, L.ldv);
    }
  }

  // Stage 4: reader levels e add (W_e ⊙ Q) Hin_e with row weights w_i = lam_i[c+1+e] exp(gamma_i).
  for (int e = 0; e < p.E; ++e) {
    if (!is_reader(p, z, e)) continue;
    __syncthreads();  // the previous level's hs / qw are no longer read
    const float* Hz = p.Hin + hin_at(p, e, bh, z);
    stage_split_tile(hs, hs_lo, L.ldv, Hz, p.K, p.V);
    for (int idx = threadIdx.x; idx < C * p.K; idx += kThreads) {
      const int i = idx / p.K, kk = idx % p.K;
      const float w = i < n ? p.lam[lam_at(p, b, r0 + i, h) + p.c + 1 + e] * expf(gam[i]) : 0.f;
      split_bf16(w * __bfloat162float(qs[i * L.ldk + kk]), qw, qw_lo, i * L.ldk + kk);
    }
    __syncthreads();  // Hin_e and W_e ⊙ Q staged
#pragma unroll
    for (int u = 0; u < kMaxTilesPerWarp; ++u) {
      const int t = warp + u * kWarps;
      if (t >= tiles) continue;
      const int ti = t / tv, tj = t % tv;
      for (int k0 = 0; k0 < p.K; k0 += 16) {
        const int at = ti * 16 * L.ldk + k0, bt = k0 * L.ldv + tj * 16;  // both operands computed
        mma_split<FragA, FragB>(acc[u], qw + at, qw_lo + at, L.ldk, hs + bt, hs_lo + bt, L.ldv);
      }
    }
  }

  // Out: stage the tile in shared memory, then write the rows that exist (the last chunk may be
  // partial, and WMMA stores whole 16-row tiles). os may alias Q_z / K_z: wait for every warp.
  __syncthreads();
#pragma unroll
  for (int u = 0; u < kMaxTilesPerWarp; ++u) {
    const int t = warp + u * kWarps;
    if (t >= tiles) continue;
    const int ti = t / tv, tj = t % tv;
    wmma::store_matrix_sync(os + ti * 16 * L.ldo + tj * 16, acc[u], L.ldo, wmma::mem_row_major);
  }
  __syncthreads();  // the whole tile is in os
  for (int idx = threadIdx.x; idx < n * p.V; idx += kThreads) {
    const int i = idx / p.V, x = idx % p.V;
    p.o[v_at(p, b, r0 + i, h) + x] = os[i * L.ldo + x];
  }
}

}  // namespace

bool tensor_core_supported(int K, int V, int C) {
  return K % 16 == 0 && V % 16 == 0 && K <= 128 && V <= 128 && C >= 16 && C <= 64;
}

void launch_fwd_stage2_summaries_tc(const ChunkedParams<bf16>& p, cudaStream_t s) {
  const size_t sum_shmem = align128(size_t(p.C) * (p.K + kPadH) * 2 * 2) + align128(size_t(p.C) * (p.V + kPadH) * 2);
  set_dynamic_smem(chunked_fwd_stage2_summaries_tc, sum_shmem);
  chunked_fwd_stage2_summaries_tc<<<dim3(p.N, p.B * p.H), kThreads, sum_shmem, s>>>(p);
}

void launch_chunked_forward_tc(const ChunkedParams<bf16>& p, cudaStream_t s) {
  const dim3 chunks(p.N, p.B * p.H);
  if (p.E > 0) {  // the level states Hin that stage 4 reads
    launch_fwd_stage2_summaries_tc(p, s);
    launch_fwd_stage3_level_states(p, s);
  }
  const size_t out_shmem = OutputSmem(p.C, p.K, p.V).total;  // 188 KB at C = 64, K = V = 128
  set_dynamic_smem(chunked_fwd_stage14_output_tc, out_shmem);
  chunked_fwd_stage14_output_tc<<<chunks, kThreads, out_shmem, s>>>(p);
}

}  // namespace loglinear::cuda
