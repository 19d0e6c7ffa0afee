// Backward kernels of the chunked form on FFMA (docs/backward.md §3, eqs. 1-5 and 14-18), one
// per stage of reference/loglinear/attention/chunked_stages.hpp (stage 1, stages 3 and 4 of the
// levels, stage 2), then dg (eq. 10, the CPU's decay_gradient). Same O() as the forward.
// Sibling: chunked_bwd_tc.cu, the tensor-core twin for bf16 sizes. Gradients are zeroed by the
// caller and every kernel adds; dq and dk are shared by the heads of a group, so they use
// atomicAdd. Templated on the storage type In of q, k, v, dout (float or bf16, read as float);
// the gradients are float32 (atomicAdd on bf16 would round every partial sum).
#include "../cuda_check.cuh"
#include "indexing.cuh"
#include "launch.cuh"

#include <algorithm>

namespace loglinear::cuda {

// Stage 1 backward: per chunk, eqs. 1-5 on the diagonal block. Dynamic shared memory
// (stage1_bwd_smem) holds S = Q K^T, W (decay x lam) and dM = dO V^T (n x (n+1) each) and two
// operand tiles: S and dM are accumulated over K and V in tiles of kTileCols columns, and every
// later product reads the chunk's rows of q, k, v or dout from a staged tile, never from global
// memory inside an inner loop.
template <class In>
__global__ void chunked_bwd_stage1_intra(ChunkedParams<In> p) {
  extern __shared__ float sh[];
  // Plain variables, not a structured binding: the row lambdas below capture them (C++17).
  const ChunkBlock blk = chunk_block(p);
  const int b = blk.b, h = blk.h, gr = blk.gr, r0 = blk.r0, n = blk.n;
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const float* gam = blk.gam;
  const int ld = n + 1, CC = p.C * (p.C + 1);
  float *S = sh, *W = sh + CC, *dM = sh + 2 * CC, *a_s = sh + 3 * CC, *b_s = a_s + p.C * kTileLd;
  const auto q_row = [&](int i) { return qk_at(p, b, r0 + i, gr); };
  const auto v_row = [&](int i) { return v_at(p, b, r0 + i, h); };
  for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
    const int i = idx / n, j = idx % n;
    S[i * ld + j] = 0.f;
    dM[i * ld + j] = 0.f;
    W[i * ld + j] = j <= i ? expf(gam[i] - gam[j]) * p.lam[lam_at(p, b, r0 + i, h) + level_in_chunk(i, j)] : 0.f;
  }
  // S_ij = q_i . k_j and dM_ij = dout_i . v_j (eq. 1) for j <= i, tile by tile.
  const auto accumulate = [&](float* X, const In* left, const In* right, auto row_at, int D) {
    for (int c0 = 0; c0 < D; c0 += kTileCols) {
      const int w = min(kTileCols, D - c0);
      stage_tile(a_s, left, row_at, n, c0, w, NoScale{});
      stage_tile(b_s, right, row_at, n, c0, w, NoScale{});
      __syncthreads();  // tiles complete before the products
      for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
        const int i = idx / n, j = idx % n;
        if (j > i) continue;
        float acc = 0.f;
        for (int x = 0; x < w; ++x) acc += a_s[i * kTileLd + x] * b_s[j * kTileLd + x];
        X[i * ld + j] += acc;
      }
      __syncthreads();  // products done before the tiles are overwritten
    }
  };
  accumulate(S, p.q, p.k, q_row, p.K);
  accumulate(dM, p.dout, p.v, v_row, p.V);
  // eq. 2: dv_j += sum_{i>=j} M_ij dout_i, M = S . W; dout per V tile.
  for (int v0 = 0; v0 < p.V; v0 += kTileCols) {
    const int w = min(kTileCols, p.V - v0);
    stage_tile(a_s, p.dout, v_row, n, v0, w, NoScale{});
    __syncthreads();
    for (int idx = threadIdx.x; idx < n * w; idx += blockDim.x) {
      const int j = idx / w, x = idx % w;
      float acc = 0.f;
      for (int i = j; i < n; ++i) acc += S[i * ld + j] * W[i * ld + j] * a_s[i * kTileLd + x];
      p.dv[v_row(j) + v0 + x] += acc;
    }
    __syncthreads();
  }
  // eqs. 3-4: dq_r += sum_{j<=r} (dM . W)_rj k_j and dk_r += sum_{i>=r} (dM . W)_ir q_i; k and q
  // per K tile.
  for (int k0 = 0; k0 < p.K; k0 += kTileCols) {
    const int w = min(kTileCols, p.K - k0);
    stage_tile(a_s, p.k, q_row, n, k0, w, NoScale{});
    stage_tile(b_s, p.q, q_row, n, k0, w, NoScale{});
    __syncthreads();
    for (int idx = threadIdx.x; idx < n * w; idx += blockDim.x) {
      const int r = idx / w, x = idx % w;
      float aq = 0.f, ak = 0.f;
      for (int j = 0; j <= r; ++j) aq += dM[r * ld + j] * W[r * ld + j] * a_s[j * kTileLd + x];
      for (int i = r; i < n; ++i) ak += dM[i * ld + r] * W[i * ld + r] * b_s[i * kTileLd + x];
      atomicAdd(&p.dq[q_row(r) + k0 + x], aq);
      atomicAdd(&p.dk[q_row(r) + k0 + x], ak);
    }
    __syncthreads();
  }
  add_intra_dlam(p, b, h, r0, n, gam, S, dM, ld);  // eq. 5
}

/// Dynamic shared memory of chunked_bwd_stage1_intra: S, W, dM (C x (C+1) each) and two tiles.
inline std::size_t stage1_bwd_smem(int C) {
  return (3 * std::size_t(C) * (C + 1) + 2 * std::size_t(C) * kTileLd) * sizeof(float);
}

// Stage 3 backward, eqs. 14-16 and 18: the reverse scan of the state gradient dH, every level at
// once, one thread per (k, v) element, chunks in reverse. Reader chunks feed dH (eq. 18, the
// stage-4 term); writers hand it to dU_z (shared by all levels: atomicAdd).
template <class In>
__global__ void chunked_bwd_stage3_level_states(ChunkedParams<In> p) {
  const int e = blockIdx.z, bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= p.K * p.V) return;
  const int kk = idx / p.V, x = idx % p.V, l = p.c + 1 + e;
  const float* gam = p.gamma + long(bh) * p.T;
  const int Tb = seq_len(p, b);
  float dH = 0.f;
  for (int z = seq_chunks(p, b) - 1; z >= 0; --z) {  // this sequence's own chunks
    const int r0 = z * p.C, r1 = min(r0 + p.C, Tb);
    if (is_writer(p, z, e)) atomicAdd(&p.dU[kv_at(p, bh, z) + idx], dH);  // eqs. 14-15
    dH = is_reset(p, z, e) ? 0.f : expf(gam[r1 - 1]) * dH;               // eq. 16
    if (is_reader(p, z, e)) {                                            // eq. 18
      for (int r = r0; r < r1; ++r) {
        const float f = p.lam[lam_at(p, b, r, h) + l] * expf(gam[r]);
        dH += f * ldf(p.q, qk_at(p, b, r, gr) + kk) * ldf(p.dout, v_at(p, b, r, h) + x);
      }
    }
  }
}

// Stage 4 backward, eq. 17: reader rows' dq and dlam. Y_i = Hin dout_i serves both.
// Thread mapping: row i is the fastest index, so a warp reads one Hin row Hz[kk][:] as a
// broadcast instead of 32 rows V floats apart, which would be uncoalesced (this kernel reads the
// largest stream of the backward, E K x V states per chunk). The chunk's dout rows are staged
// once in dynamic shared memory (n x (V+1) floats, <= 33 KB; the +1 column keeps the 32 rows a
// warp reads in distinct banks) and reused by every level.
template <class In>
__global__ void chunked_bwd_stage4_level_output(ChunkedParams<In> p) {
  extern __shared__ float sh[];
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int ld = p.V + 1;
  float *dout_s = sh, *red = sh + n * ld;  // red: per-row dlam partial sums of one level
  for (int idx = threadIdx.x; idx < n * p.V; idx += blockDim.x) {
    const int i = idx / p.V, x = idx % p.V;
    dout_s[i * ld + x] = ldf(p.dout, v_at(p, b, r0 + i, h) + x);
  }
  for (int e = 0; e < p.E; ++e) {
    if (!is_reader(p, z, e)) continue;
    const int l = p.c + 1 + e;
    for (int i = threadIdx.x; i < n; i += blockDim.x) red[i] = 0.f;
    __syncthreads();  // dout_s loaded (first level) and red cleared before the products
    const float* Hz = p.Hin + hin_at(p, e, bh, z);
    for (int idx = threadIdx.x; idx < n * p.K; idx += blockDim.x) {
      const int i = idx % n, kk = idx / n;
      const float* Hrow = Hz + long(kk) * p.V;
      const float* di = dout_s + i * ld;
      float y = 0.f;
      for (int x = 0; x < p.V; ++x) y += Hrow[x] * di[x];
      const float decay = expf(gam[i]);
      atomicAdd(&p.dq[qk_at(p, b, r0 + i, gr) + kk], p.lam[lam_at(p, b, r0 + i, h) + l] * decay * y);
      atomicAdd(&red[i], decay * ldf(p.q, qk_at(p, b, r0 + i, gr) + kk) * y);
    }
    __syncthreads();  // all rows' partial sums are in red
    for (int i = threadIdx.x; i < n; i += blockDim.x) p.dlam[lam_at(p, b, r0 + i, h) + l] += red[i];
    __syncthreads();  // red is cleared again by the next level
  }
}

// Stage 2 backward, eq. 15: dk_j += f_j dU_z v_j, dv_j += f_j dU_z^T k_j, f_j = exp(Gamma - gamma_j).
template <class In>
__global__ void chunked_bwd_stage2_summaries(ChunkedParams<In> p) {
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const float* dU = p.dU + kv_at(p, bh, z);
  const float Gamma = gam[n - 1];
  // The chunk's v rows are staged in shared memory (n x (V+1) floats, +1 against bank conflicts)
  // and row j is the fastest thread index, so a warp reads one dU row as a broadcast rather than
  // 32 dU rows V floats apart per step (uncoalesced).
  extern __shared__ float v_s[];
  const int ld = p.V + 1;
  for (int idx = threadIdx.x; idx < n * p.V; idx += blockDim.x) {
    const int j = idx / p.V, x = idx % p.V;
    v_s[j * ld + x] = ldf(p.v, v_at(p, b, r0 + j, h) + x);
  }
  __syncthreads();  // v_s complete before the products read other threads' rows
  for (int idx = threadIdx.x; idx < n * p.K; idx += blockDim.x) {
    const int j = idx % n, kk = idx / n;
    const float* vj = v_s + j * ld;
    const float* dUrow = dU + long(kk) * p.V;
    float acc = 0.f;
    for (int x = 0; x < p.V; ++x) acc += dUrow[x] * vj[x];
    atomicAdd(&p.dk[qk_at(p, b, r0 + j, gr) + kk], expf(Gamma - gam[j]) * acc);
  }
  for (int idx = threadIdx.x; idx < n * p.V; idx += blockDim.x) {
    const int j = idx / p.V, x = idx % p.V;
    const In* kj = p.k + qk_at(p, b, r0 + j, gr);
    float acc = 0.f;
    for (int kk = 0; kk < p.K; ++kk) acc += dU[long(kk) * p.V + x] * ldf(kj, kk);
    p.dv[v_at(p, b, r0 + j, h) + x] += expf(Gamma - gam[j]) * acc;
  }
}

// dg from eq. 10: dg_t = sum_{u>=t} (sum_l lam_u[l] dlam_u[l] - <v_u, dv_u>) + dG_last, where
// dG_last = <dS_final, S_final> when a final state's gradient is given (chunked_state.cu), and
// dg_0 = 0 when the call starts the sequence (t0 = 0: g_0 is then never applied to anything).
// Two passes. Terms: one thread per row (b, t, h) of every stream. Scan: one block per stream,
// each thread reverse-sums a contiguous run of rows after a suffix sum over the runs, so that a
// long sequence (T = 32K at B = 1) is not walked by one thread alone.
template <class In>
__global__ void chunked_bwd_decay_gradient_terms(ChunkedParams<In> p) {
  const long rows = long(p.tokens) * p.H;  // row r = (b T + t) H + h (packed: (cu[b] + t) H + h)
  for (long r = blockIdx.x * long(blockDim.x) + threadIdx.x; r < rows; r += long(gridDim.x) * blockDim.x) {
    float rho = 0.f, kappa = 0.f;
    const float *lam = p.lam + r * p.L, *dlam = p.dlam + r * p.L;
    for (int l = 0; l < p.L; ++l) rho += lam[l] * dlam[l];
    const In* v = p.v + r * p.V;
    const float* dv = p.dv + r * p.V;
    for (int x = 0; x < p.V; ++x) kappa += ldf(v, x) * dv[x];
    // The last row of each stream carries dG_last, which the suffix scan hands to every row.
    if (p.dS_final && (r / p.H) % p.T == p.T - 1) rho += p.dG_last[(r / (long(p.T) * p.H)) * p.H + r % p.H];
    p.dg[r] = rho - kappa;
  }
}

constexpr int kScanThreads = 1024;
template <class In>
__global__ void __launch_bounds__(kScanThreads) chunked_bwd_decay_gradient_scan(ChunkedParams<In> p) {
  __shared__ float after[kScanThreads];  // after[i]: sum of the runs of threads > i
  const int bh = blockIdx.x, b = bh / p.H, h = bh % p.H, Tb = seq_len(p, b);
  const int per = (Tb + kScanThreads - 1) / kScanThreads;
  const int t0 = min(int(threadIdx.x) * per, Tb), t1 = min(t0 + per, Tb);
  float run = 0.f;
  for (int t = t0; t < t1; ++t) run += p.dg[g_at(p, b, t, h)];
  after[threadIdx.x] = run;
  __syncthreads();  // every run's sum is in shared memory
  if (threadIdx.x == 0) {
    float acc = 0.f;
    for (int i = kScanThreads - 1; i >= 0; --i) {
      const float x = after[i];
      after[i] = acc;
      acc += x;
    }
  }
  __syncthreads();  // suffix sums ready
  float acc = after[threadIdx.x];
  for (int t = t1 - 1; t >= t0; --t) {
    acc += p.dg[g_at(p, b, t, h)];
    p.dg[g_at(p, b, t, h)] = acc;
  }
  if (p.t0 == 0 && t0 == 0 && t1 > 0) p.dg[g_at(p, b, 0, h)] = 0.f;  // g_0 is never applied to anything
}

template <class In>
void launch_bwd_decay_gradient(const ChunkedParams<In>& p, cudaStream_t s) {
  const long rows = long(p.tokens) * p.H;
  chunked_bwd_decay_gradient_terms<In><<<int(std::min<long>((rows + 255) / 256, 8192)), 256, 0, s>>>(p);
  chunked_bwd_decay_gradient_scan<In><<<p.B * p.H, kScanThreads, 0, s>>>(p);
}

template <class In>
void launch_chunked_backward_ffma(const ChunkedParams<In>& p, cudaStream_t s) {
  const dim3 chunks(p.N, p.B * p.H);
  const int C = p.C < 64 ? p.C : 64;
  set_dynamic_smem(chunked_bwd_stage1_intra<In>, stage1_bwd_smem(p.C));
  chunked_bwd_stage1_intra<In><<<chunks, 256, stage1_bwd_smem(p.C), s>>>(p);
  if (p.E == 0) return;  // T <= C: stage 1 is the whole backward
  // The forward's stages 2-3 again: the level states Hin that stage 4 backward reads.
  launch_fwd_stage2_summaries(p, s);
  launch_fwd_stage3_level_states(p, s);
  chunked_bwd_stage3_level_states<In><<<dim3((p.K * p.V + 127) / 128, p.B * p.H, p.E), 128, 0, s>>>(p);
  const size_t out_shmem = (size_t(C) * (p.V + 1) + C) * sizeof(float);
  set_dynamic_smem(chunked_bwd_stage4_level_output<In>, out_shmem);
  chunked_bwd_stage4_level_output<In><<<chunks, 256, out_shmem, s>>>(p);
  const size_t v_shmem = size_t(C) * (p.V + 1) * sizeof(float);
  set_dynamic_smem(chunked_bwd_stage2_summaries<In>, v_shmem);
  chunked_bwd_stage2_summaries<In><<<chunks, 256, v_shmem, s>>>(p);
}

#define LOGLINEAR_INSTANTIATE(In)                                                         \
  template void launch_bwd_decay_gradient<In>(const ChunkedParams<In>&, cudaStream_t);     \
  template void launch_chunked_backward_ffma<In>(const ChunkedParams<In>&, cudaStream_t);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(__nv_bfloat16)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::cuda
