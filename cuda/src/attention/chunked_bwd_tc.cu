// Tensor-core backward of the chunked form for bf16 storage (docs/backward.md §3, eqs. 1-5 and
// 14-18), stage numbers of reference/loglinear/attention/chunked_stages.hpp; same cost as its FFMA
// twin chunked_bwd_ffma.cu, restated as block GEMMs:
//
//   stage 1 (eqs. 1-5)   S = Q K^T, dM = dO V^T (C x C); P = S ⊙ W, dP = dM ⊙ W;
//                        dV += P^T dO, dQ += dP K, dK += dP^T Q; dlam_i[l <= c] from S ⊙ D ⊙ dM
//   stage 4 (eqs. 17-18) per reader level e: Y_e = dO Hin_e^T (C x K) gives dq_i += w_i Y_e,i and
//                        dlam_i[c+1+e] = exp(gamma_i) <q_i, Y_e,i>; D_e = (W_e ⊙ Q)^T dO (K x V)
//                        is what the stage-3 scan adds at reader chunks
//   stage 3 (eqs. 14-16) elementwise over (level, stream, state element), chunks in reverse
//   stage 2 (eq. 15)     dK += (f ⊙ V) dU^T, dV += (f ⊙ K) dU with f_j = exp(Gamma - gamma_j)
//
// The FFMA stage-3 scan recomputes sum_r w_r q_r dout_r^T inside its chunk loop for every state
// element (a C-long dot product per element and reader chunk); here that rank-C update is one
// tensor-core GEMM per (chunk, level) in stage 4, and the scan only streams K x V tiles. The
// product D_e is written over Hin_e of the same chunk, which nothing reads after stage 4: no extra
// memory. WMMA rather than wgmma for the reasons given in chunked_fwd_tc.cu. Computed operands (P,
// dP, Hin, dU and the scaled rows) are hi + lo bf16 pairs (wmma_tiles.cuh), products accumulate
// in float32.
#include "../cuda_check.cuh"
#include "launch.cuh"
#include "wmma_tiles.cuh"

namespace loglinear::cuda {

namespace {

using namespace tc;

// ---- stage 1 backward: intra-chunk gradients, eqs. 1-5 ---------------------------------------
struct IntraSmem {
  int ldk, ldv, ldc, ldp;
  size_t qs, ks, vs, dos, sf, dmf, ps, dps, scratch, total;
  __host__ __device__ IntraSmem(int C, int K, int V)
      : ldk(K + kPadH), ldv(V + kPadH), ldc(C + kPadF), ldp(C + kPadH) {
    qs = 0;                                        // Q    C x K bf16
    ks = qs + align128(size_t(C) * ldk * 2);       // K    C x K bf16
    vs = ks + align128(size_t(C) * ldk * 2);       // V    C x V bf16
    dos = vs + align128(size_t(C) * ldv * 2);      // dO   C x V bf16
    sf = dos + align128(size_t(C) * ldv * 2);      // S    C x C float
    dmf = sf + align128(size_t(C) * ldc * 4);      // dM   C x C float
    ps = dmf + align128(size_t(C) * ldc * 4);          // P    C x C bf16, hi then lo
    dps = ps + align128(size_t(C) * ldp * 2 * 2);      // dP   C x C bf16, hi then lo
    scratch = dps + align128(size_t(C) * ldp * 2 * 2); // one 16 x 16 float tile per warp
    total = scratch + size_t(kWarps) * 256 * 4;
  }
};

__global__ void __launch_bounds__(kThreads) chunked_bwd_stage1_intra_tc(ChunkedParams<bf16> p) {
  extern __shared__ __align__(128) unsigned char smem[];
  const IntraSmem L(p.C, p.K, p.V);
  bf16 *qs = reinterpret_cast<bf16*>(smem + L.qs), *ks = reinterpret_cast<bf16*>(smem + L.ks),
       *vs = reinterpret_cast<bf16*>(smem + L.vs), *dos = reinterpret_cast<bf16*>(smem + L.dos),
       *ps = reinterpret_cast<bf16*>(smem + L.ps), *dps = reinterpret_cast<bf16*>(smem + L.dps);
  float *sf = reinterpret_cast<float*>(smem + L.sf), *dmf = reinterpret_cast<float*>(smem + L.dmf);
  bf16 *ps_lo = ps + p.C * L.ldp, *dps_lo = dps + p.C * L.ldp;
  const int warp = threadIdx.x / 32;
  float* scratch = reinterpret_cast<float*>(smem + L.scratch) + warp * 256;
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int C = p.C, tc = C / 16;
  const long ldq = long(p.G) * p.K, ldo = long(p.H) * p.V;
  stage_rows(qs, L.ldk, p.q + qk_at(p, b, r0, gr), ldq, p.K, C, n);
  stage_rows(ks, L.ldk, p.k + qk_at(p, b, r0, gr), ldq, p.K, C, n);
  stage_rows(vs, L.ldv, p.v + v_at(p, b, r0, h), ldo, p.V, C, n);
  stage_rows(dos, L.ldv, p.dout + v_at(p, b, r0, h), ldo, p.V, C, n);
  __syncthreads();  // Q, K, V, dO staged

  // S = Q K^T and dM = dO V^T (eq. 1), lower-triangular tiles only.
  for (int t = warp; t < tc * tc; t += kWarps) {
    const int ti = t / tc, tj = t % tc;
    if (tj > ti) continue;
    FragC s, dm;
    wmma::fill_fragment(s, 0.f);
    wmma::fill_fragment(dm, 0.f);
    for (int k0 = 0; k0 < p.K; k0 += 16) {
      // K^T as a column-major view of ks
      mma_split<FragA, FragBt>(s, qs + ti * 16 * L.ldk + k0, nullptr, L.ldk, ks + tj * 16 * L.ldk + k0, nullptr,
                               L.ldk);
    }
    for (int x0 = 0; x0 < p.V; x0 += 16) {
      // V^T as a column-major view of vs
      mma_split<FragA, FragBt>(dm, dos + ti * 16 * L.ldv + x0, nullptr, L.ldv, vs + tj * 16 * L.ldv + x0, nullptr,
                               L.ldv);
    }
    wmma::store_matrix_sync(sf + ti * 16 * L.ldc + tj * 16, s, L.ldc, wmma::mem_row_major);
    wmma::store_matrix_sync(dmf + ti * 16 * L.ldc + tj * 16, dm, L.ldc, wmma::mem_row_major);
  }
  __syncthreads();  // S, dM complete
  // P = S ⊙ W and dP = dM ⊙ W, W_ij = exp(gamma_i - gamma_j) lam_i[ell(i, j)] for j <= i < n.
  for (int idx = threadIdx.x; idx < C * C; idx += kThreads) {
    const int i = idx / C, j = idx % C;
    float w = 0.f, s = 0.f, dm = 0.f;
    if (j <= i && i < n) {
      w = expf(gam[i] - gam[j]) * p.lam[lam_at(p, b, r0 + i, h) + level_in_chunk(i, j)];
      s = sf[i * L.ldc + j];
      dm = dmf[i * L.ldc + j];
    }
    split_bf16(s * w, ps, ps_lo, i * L.ldp + j);
    split_bf16(dm * w, dps, dps_lo, i * L.ldp + j);
  }
  add_intra_dlam(p, b, h, r0, n, gam, sf, dmf, L.ldc);  // eq. 5
  __syncthreads();  // P, dP complete

  // eqs. 2-4: dV += P^T dO, dQ += dP K, dK += dP^T Q; one tile set after the other over the warps.
  const int tv = p.V / 16, tk = p.K / 16, n_dv = tc * tv, n_dq = tc * tk;
  for (int t = warp; t < n_dv + 2 * n_dq; t += kWarps) {
    FragC acc;
    wmma::fill_fragment(acc, 0.f);
    if (t < n_dv) {  // dV rows j: sum over i >= j of P_ij dO_i
      const int tj = t / tv, tx = t % tv;
      for (int i0 = tj * 16; i0 < C; i0 += 16) {
        const int at = i0 * L.ldp + tj * 16;  // P^T as a column-major view of ps
        mma_split<FragAt, FragB>(acc, ps + at, ps_lo + at, L.ldp, dos + i0 * L.ldv + tx * 16, nullptr, L.ldv);
      }
      add_tile<false>(acc, scratch, p.dv + v_at(p, b, r0, h), ldo, tj * 16, tx * 16, n);
    } else if (t < n_dv + n_dq) {  // dQ rows i: sum over j <= i of dP_ij k_j
      const int u = t - n_dv, ti = u / tk, tq = u % tk;
      for (int j0 = 0; j0 <= ti * 16; j0 += 16) {
        const int at = ti * 16 * L.ldp + j0;
        mma_split<FragA, FragB>(acc, dps + at, dps_lo + at, L.ldp, ks + j0 * L.ldk + tq * 16, nullptr, L.ldk);
      }
      add_tile<true>(acc, scratch, p.dq + qk_at(p, b, r0, gr), ldq, ti * 16, tq * 16, n);
    } else {  // dK rows j: sum over i >= j of dP_ij q_i
      const int u = t - n_dv - n_dq, tj = u / tk, tq = u % tk;
      for (int i0 = tj * 16; i0 < C; i0 += 16) {
        const int at = i0 * L.ldp + tj * 16;  // dP^T as a column-major view of dps
        mma_split<FragAt, FragB>(acc, dps + at, dps_lo + at, L.ldp, qs + i0 * L.ldk + tq * 16, nullptr, L.ldk);
      }
      add_tile<true>(acc, scratch, p.dk + qk_at(p, b, r0, gr), ldq, tj * 16, tq * 16, n);
    }
  }
}

// ---- stage 4 backward: level gradients of reader chunks, eqs. 17-18 --------------------------
struct LevelSmem {
  int ldk, ldv, ldqf;
  size_t qs, dos, hs, qws, dqs, w, eg, red, scratch, total;
  __host__ __device__ LevelSmem(int C, int K, int V) : ldk(K + kPadH), ldv(V + kPadH), ldqf(K + kPadF) {
    qs = 0;                                          // Q          C x K bf16
    dos = qs + align128(size_t(C) * ldk * 2);        // dO         C x V bf16
    hs = dos + align128(size_t(C) * ldv * 2);        // Hin_e      K x V bf16, hi then lo
    qws = hs + align128(size_t(K) * ldv * 2 * 2);    // W_e ⊙ Q    C x K bf16, hi then lo
    dqs = qws + align128(size_t(C) * ldk * 2 * 2);   // dq sum     C x K float
    w = dqs + align128(size_t(C) * ldqf * 4);        // w_i        C float
    eg = w + align128(size_t(C) * 4);                // exp(gamma) C float
    red = eg + align128(size_t(C) * 4);              // dlam sums  C float
    scratch = red + align128(size_t(C) * 4);         // one 16 x 16 float tile per warp
    total = scratch + size_t(kWarps) * 256 * 4;
  }
};

__global__ void __launch_bounds__(kThreads) chunked_bwd_stage4_level_output_tc(ChunkedParams<bf16> p) {
  extern __shared__ __align__(128) unsigned char smem[];
  const LevelSmem L(p.C, p.K, p.V);
  bf16 *qs = reinterpret_cast<bf16*>(smem + L.qs), *dos = reinterpret_cast<bf16*>(smem + L.dos),
       *hs = reinterpret_cast<bf16*>(smem + L.hs), *qws = reinterpret_cast<bf16*>(smem + L.qws);
  float *dqs = reinterpret_cast<float*>(smem + L.dqs), *w = reinterpret_cast<float*>(smem + L.w),
        *eg = reinterpret_cast<float*>(smem + L.eg), *red = reinterpret_cast<float*>(smem + L.red);
  bf16 *hs_lo = hs + p.K * L.ldv, *qws_lo = qws + p.C * L.ldk;
  const int warp = threadIdx.x / 32;
  float* scratch = reinterpret_cast<float*>(smem + L.scratch) + warp * 256;
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int C = p.C;
  bool any_reader = false;
  for (int e = 0; e < p.E; ++e) any_reader |= is_reader(p, z, e);
  if (!any_reader) return;  // block-uniform: chunk z reads no level
  const long ldq = long(p.G) * p.K, ldo = long(p.H) * p.V;
  stage_rows(qs, L.ldk, p.q + qk_at(p, b, r0, gr), ldq, p.K, C, n);
  stage_rows(dos, L.ldv, p.dout + v_at(p, b, r0, h), ldo, p.V, C, n);
  for (int idx = threadIdx.x; idx < C * L.ldqf; idx += kThreads) dqs[idx] = 0.f;
  for (int i = threadIdx.x; i < C; i += kThreads) eg[i] = i < n ? expf(gam[i]) : 0.f;
  const int tk = p.K / 16, tv = p.V / 16;
  for (int e = 0; e < p.E; ++e) {
    if (!is_reader(p, z, e)) continue;
    const int l = p.c + 1 + e;
    __syncthreads();  // staging done (first level) / the previous level's hs, qws, red no longer read
    float* Hz = p.Hin + hin_at(p, e, bh, z);
    stage_split_tile(hs, hs_lo, L.ldv, Hz, p.K, p.V);
    for (int i = threadIdx.x; i < C; i += kThreads) {
      w[i] = i < n ? p.lam[lam_at(p, b, r0 + i, h) + l] * eg[i] : 0.f;
      red[i] = 0.f;
    }
    __syncthreads();  // Hin_e staged (Hz may now be overwritten), w and red ready
    for (int idx = threadIdx.x; idx < C * p.K; idx += kThreads) {
      const int i = idx / p.K, kk = idx % p.K;
      split_bf16(w[i] * __bfloat162float(qs[i * L.ldk + kk]), qws, qws_lo, i * L.ldk + kk);
    }
    // (a) Y_e = dO Hin_e^T: dq_i += w_i Y_i (eq. 17), dlam_i[l] += exp(gamma_i) <q_i, Y_i> (eq. 18).
    //     Each warp owns the same dq tiles at every level, so dqs needs no atomics.
    for (int t = warp; t < (C / 16) * tk; t += kWarps) {
      const int ti = t / tk, tq = t % tk;
      FragC acc;
      wmma::fill_fragment(acc, 0.f);
      for (int x0 = 0; x0 < p.V; x0 += 16) {
        const int bt = tq * 16 * L.ldv + x0;  // Hin^T as a column-major view of hs
        mma_split<FragA, FragBt>(acc, dos + ti * 16 * L.ldv + x0, nullptr, L.ldv, hs + bt, hs_lo + bt, L.ldv);
      }
      wmma::store_matrix_sync(scratch, acc, 16, wmma::mem_row_major);
      __syncwarp();
      // Lane l holds column l % 16 of rows l / 16, l / 16 + 2, ...: the 16 lanes of a row sum
      // their dlam terms with shuffles, and one of them adds the row's sum (16x fewer atomics).
      for (int e2 = threadIdx.x % 32; e2 < 256; e2 += 32) {
        const int i = ti * 16 + e2 / 16, kk = tq * 16 + e2 % 16;
        float term = 0.f;
        if (i < n) {
          const float y = scratch[e2];
          dqs[i * L.ldqf + kk] += w[i] * y;
          term = eg[i] * __bfloat162float(qs[i * L.ldk + kk]) * y;
        }
        for (int off = 8; off > 0; off >>= 1) term += __shfl_xor_sync(0xffffffffu, term, off);
        if (e2 % 16 == 0 && i < n) atomicAdd(&red[i], term);
      }
      __syncwarp();
    }
    __syncthreads();  // qws complete before (b) reads other warps' rows
    // (b) D_e = (W_e ⊙ Q)^T dO, written over Hin_e of this chunk for the scan.
    for (int t = warp; t < tk * tv; t += kWarps) {
      const int tq = t / tv, tx = t % tv;
      FragC acc;
      wmma::fill_fragment(acc, 0.f);
      for (int i0 = 0; i0 < C; i0 += 16) {
        const int at = i0 * L.ldk + tq * 16;  // (W ⊙ Q)^T as a column-major view of qws
        mma_split<FragAt, FragB>(acc, qws + at, qws_lo + at, L.ldk, dos + i0 * L.ldv + tx * 16, nullptr, L.ldv);
      }
      wmma::store_matrix_sync(Hz + long(tq) * 16 * p.V + tx * 16, acc, p.V, wmma::mem_row_major);
    }
    __syncthreads();  // red complete
    for (int i = threadIdx.x; i < n; i += kThreads) p.dlam[lam_at(p, b, r0 + i, h) + l] += red[i];
  }
  __syncthreads();  // dqs complete
  float* dq = p.dq + qk_at(p, b, r0, gr);
  for (int idx = threadIdx.x; idx < n * p.K; idx += kThreads) {
    const int i = idx / p.K, kk = idx % p.K;
    atomicAdd(&dq[i * ldq + kk], dqs[i * L.ldqf + kk]);
  }
}

// ---- stage 3 backward: level-state scan, eqs. 14-16 -------------------------------------------
// As chunked_bwd_stage3_level_states, with the reader update D_e precomputed by stage 4.
__global__ void chunked_bwd_stage3_level_states_tc(ChunkedParams<bf16> p) {
  const int e = blockIdx.z, bh = blockIdx.y, b = bh / p.H;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= p.K * p.V) return;
  const float* gam = p.gamma + long(bh) * p.T;
  const int Tb = seq_len(p, b);
  float dH = 0.f;
  for (int z = seq_chunks(p, b) - 1; z >= 0; --z) {  // this sequence's own chunks
    if (is_writer(p, z, e)) atomicAdd(&p.dU[kv_at(p, bh, z) + idx], dH);  // eqs. 14-15
    dH = is_reset(p, z, e) ? 0.f : expf(gam[min(z * p.C + p.C, Tb) - 1]) * dH;  // eq. 16
    if (is_reader(p, z, e)) dH += p.Hin[hin_at(p, e, bh, z) + idx];          // eq. 18 via D_e
  }
}

// ---- stage 2 backward: summary gradients, eq. 15 ----------------------------------------------
struct SummarySmem {
  int ldk, ldv;
  size_t fks, fvs, dus, scratch, total;
  __host__ __device__ SummarySmem(int C, int K, int V) : ldk(K + kPadH), ldv(V + kPadH) {
    fks = 0;                                            // f ⊙ K   C x K bf16, hi then lo
    fvs = fks + align128(size_t(C) * ldk * 2 * 2);      // f ⊙ V   C x V bf16, hi then lo
    dus = fvs + align128(size_t(C) * ldv * 2 * 2);      // dU_z    K x V bf16, hi then lo
    scratch = dus + align128(size_t(K) * ldv * 2 * 2);  // one 16 x 16 float tile per warp
    total = scratch + size_t(kWarps) * 256 * 4;
  }
};

__global__ void __launch_bounds__(kThreads) chunked_bwd_stage2_summaries_tc(ChunkedParams<bf16> p) {
  extern __shared__ __align__(128) unsigned char smem[];
  const SummarySmem L(p.C, p.K, p.V);
  bf16 *fks = reinterpret_cast<bf16*>(smem + L.fks), *fvs = reinterpret_cast<bf16*>(smem + L.fvs),
       *dus = reinterpret_cast<bf16*>(smem + L.dus);
  bf16 *fks_lo = fks + p.C * L.ldk, *fvs_lo = fvs + p.C * L.ldv, *dus_lo = dus + p.K * L.ldv;
  const int warp = threadIdx.x / 32;
  float* scratch = reinterpret_cast<float*>(smem + L.scratch) + warp * 256;
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int C = p.C;
  const float Gamma = gam[n - 1];
  const long ldq = long(p.G) * p.K, ldo = long(p.H) * p.V;
  stage_decayed_rows(fks, fks_lo, L.ldk, p.k + qk_at(p, b, r0, gr), ldq, p.K, C, n, gam, Gamma);
  stage_decayed_rows(fvs, fvs_lo, L.ldv, p.v + v_at(p, b, r0, h), ldo, p.V, C, n, gam, Gamma);
  stage_split_tile(dus, dus_lo, L.ldv, p.dU + kv_at(p, bh, z), p.K, p.V);
  __syncthreads();  // operands staged
  const int tk = p.K / 16, tv = p.V / 16, tc = C / 16, n_dk = tc * tk;
  for (int t = warp; t < n_dk + tc * tv; t += kWarps) {
    FragC acc;
    wmma::fill_fragment(acc, 0.f);
    if (t < n_dk) {  // dK = (f ⊙ V) dU^T
      const int ti = t / tk, tq = t % tk;
      for (int x0 = 0; x0 < p.V; x0 += 16) {
        // Both operands computed; dU^T as a column-major view of dus.
        const int at = ti * 16 * L.ldv + x0, bt = tq * 16 * L.ldv + x0;
        mma_split<FragA, FragBt>(acc, fvs + at, fvs_lo + at, L.ldv, dus + bt, dus_lo + bt, L.ldv);
      }
      add_tile<true>(acc, scratch, p.dk + qk_at(p, b, r0, gr), ldq, ti * 16, tq * 16, n);
    } else {  // dV = (f ⊙ K) dU
      const int u = t - n_dk, ti = u / tv, tx = u % tv;
      for (int k0 = 0; k0 < p.K; k0 += 16) {
        const int at = ti * 16 * L.ldk + k0, bt = k0 * L.ldv + tx * 16;  // both operands computed
        mma_split<FragA, FragB>(acc, fks + at, fks_lo + at, L.ldk, dus + bt, dus_lo + bt, L.ldv);
      }
      add_tile<false>(acc, scratch, p.dv + v_at(p, b, r0, h), ldo, ti * 16, tx * 16, n);
    }
  }
}

}  // namespace

void launch_chunked_backward_tc(const ChunkedParams<bf16>& p, cudaStream_t s) {
  const dim3 chunks(p.N, p.B * p.H);
  const size_t intra = IntraSmem(p.C, p.K, p.V).total;  // 154 KB at C = 64, K = V = 128
  set_dynamic_smem(chunked_bwd_stage1_intra_tc, intra);
  chunked_bwd_stage1_intra_tc<<<chunks, kThreads, intra, s>>>(p);
  if (p.E == 0) return;  // T <= C: stage 1 is the whole backward
  // The forward's stages 2-3 again: the level states Hin that stage 4 backward reads.
  launch_fwd_stage2_summaries_tc(p, s);
  launch_fwd_stage3_level_states(p, s);
  // Stage 4 before 3: it writes the reader updates D_e that the stage-3 scan adds.
  const size_t levels = LevelSmem(p.C, p.K, p.V).total;  // 180 KB at C = 64, K = V = 128
  set_dynamic_smem(chunked_bwd_stage4_level_output_tc, levels);
  chunked_bwd_stage4_level_output_tc<<<chunks, kThreads, levels, s>>>(p);
  chunked_bwd_stage3_level_states_tc<<<dim3((p.K * p.V + 127) / 128, p.B * p.H, p.E), 128, 0, s>>>(p);
  const size_t summary = SummarySmem(p.C, p.K, p.V).total;
  set_dynamic_smem(chunked_bwd_stage2_summaries_tc, summary);
  chunked_bwd_stage2_summaries_tc<<<chunks, kThreads, summary, s>>>(p);
}

}  // namespace loglinear::cuda
