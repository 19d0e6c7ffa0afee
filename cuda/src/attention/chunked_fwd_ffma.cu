// Forward kernels of the chunked form on FFMA, one per stage of SPEC.md §5, numbered as in
// reference/loglinear/attention/chunked_stages.hpp: float32 arithmetic for any storage type In of
// q, k, v (float or bf16, read as float). O(T C (K+V) + T E K V) per head, E chunk levels.
// Siblings: chunked_fwd_tc.cu, the tensor-core twin that bf16 sizes take (chunked_launch.cu).
// float32 inputs stay on FFMA on purpose: tf32 tensor cores would round q, k, v to 10-bit
// mantissas (error ~1e-3), and this path is the GPU's exact float32 reference (<= 1e-4).
// Parallelism beyond one block per (sequence, head): stages 1, 2 and 4 run one block per (chunk,
// sequence, head); stage 3 runs every chunk level at once, one thread per state element, since
// the levels are independent.
#include "../cuda_check.cuh"
#include "indexing.cuh"
#include "launch.cuh"

namespace loglinear::cuda {

// Chunk-local inclusive cumsum of g (gamma), SPEC.md §5, the CPU's chunk_local_cumsum. One warp
// per (chunk, stream); the serial sum over <= 64 rows keeps the summation order of the CPU.
template <class In>
__global__ void chunked_fwd_local_cumsum(ChunkedParams<In> p) {
  const int z = blockIdx.x, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  if (threadIdx.x != 0) return;
  const int r0 = z * p.C, r1 = min(r0 + p.C, seq_len(p, b));  // empty past a packed sequence's end
  float acc = 0.f;
  for (int r = r0; r < r1; ++r) {
    acc += p.g[g_at(p, b, r, h)];
    p.gamma[long(bh) * p.T + r] = acc;
  }
}

// Stage 1: o_i = sum_{j<=i} (q_i.k_j) exp(gamma_i - gamma_j) lam_i[ell(i,j)] v_j within a chunk.
// Dynamic shared memory (stage1_fwd_smem): the masked n x n block A (row stride n + 1) and two
// operand tiles. A = Q K^T is accumulated over K in tiles of kTileCols columns of q and k, then
// o = A V is written per V tile; every inner product reads shared memory only (the rows a warp
// reads sit kTileLd floats apart: distinct banks), where reading q_i and k_j rows from global
// memory made each warp's load 32 cache lines.
template <class In>
__global__ void chunked_fwd_stage1_intra(ChunkedParams<In> p) {
  extern __shared__ float sh[];
  // Plain variables, not a structured binding: the row lambdas below capture them (C++17).
  const ChunkBlock blk = chunk_block(p);
  const int b = blk.b, h = blk.h, gr = blk.gr, r0 = blk.r0, n = blk.n;
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const float* gam = blk.gam;
  const int ld = n + 1;
  float *A = sh, *a_s = sh + p.C * (p.C + 1), *b_s = a_s + p.C * kTileLd;
  const auto q_row = [&](int i) { return qk_at(p, b, r0 + i, gr); };
  const auto v_row = [&](int i) { return v_at(p, b, r0 + i, h); };
  for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) A[(idx / n) * ld + idx % n] = 0.f;
  for (int k0 = 0; k0 < p.K; k0 += kTileCols) {
    const int w = min(kTileCols, p.K - k0);
    stage_tile(a_s, p.q, q_row, n, k0, w, NoScale{});
    stage_tile(b_s, p.k, q_row, n, k0, w, NoScale{});
    __syncthreads();  // tiles complete (and A cleared) before the products
    for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
      const int i = idx / n, j = idx % n;
      if (j > i) continue;
      float a = 0.f;
      for (int x = 0; x < w; ++x) a += a_s[i * kTileLd + x] * b_s[j * kTileLd + x];
      A[i * ld + j] += a;
    }
    __syncthreads();  // products done before the next tiles overwrite a_s, b_s
  }
  for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
    const int i = idx / n, j = idx % n;
    if (j <= i) A[i * ld + j] *= expf(gam[i] - gam[j]) * p.lam[lam_at(p, b, r0 + i, h) + level_in_chunk(i, j)];
  }
  for (int v0 = 0; v0 < p.V; v0 += kTileCols) {
    const int w = min(kTileCols, p.V - v0);
    stage_tile(b_s, p.v, v_row, n, v0, w, NoScale{});
    __syncthreads();  // A scaled and the v tile complete
    for (int idx = threadIdx.x; idx < n * w; idx += blockDim.x) {
      const int i = idx / w, x = idx % w;
      float acc = 0.f;
      for (int j = 0; j <= i; ++j) acc += A[i * ld + j] * b_s[j * kTileLd + x];
      p.o[v_row(i) + v0 + x] = acc;
    }
    __syncthreads();  // reads of b_s done before the next tile
  }
}

/// Dynamic shared memory of chunked_fwd_stage1_intra: A (C x (C+1)) and two C x kTileLd tiles.
inline std::size_t stage1_fwd_smem(int C) { return (std::size_t(C) * (C + 1) + 2 * std::size_t(C) * kTileLd) * sizeof(float); }

// Stage 2: U_z = sum_j exp(Gamma_z - gamma_j) k_j v_j^T. Per (K tile, V tile) of U: the chunk's
// rows of k, scaled by f_j = exp(Gamma - gamma_j) once per row, and of v are staged in shared
// memory, then one thread per (k, v) element sums over the rows (a warp reads one k column as a
// broadcast and consecutive v columns). Summation over j in row order, as before.
template <class In>
__global__ void chunked_fwd_stage2_summaries(ChunkedParams<In> p) {
  extern __shared__ float sh[];
  // Plain variables, not a structured binding: the row lambdas below capture them (C++17).
  const ChunkBlock blk = chunk_block(p);
  const int z = blk.z, bh = blk.bh, b = blk.b, h = blk.h, gr = blk.gr, r0 = blk.r0, n = blk.n;
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const float* gam = blk.gam;
  const float Gamma = gam[n - 1];
  float *k_s = sh, *v_s = sh + p.C * kTileLd;
  const auto k_row = [&](int i) { return qk_at(p, b, r0 + i, gr); };
  const auto v_row = [&](int i) { return v_at(p, b, r0 + i, h); };
  const auto f = [&](int j) { return expf(Gamma - gam[j]); };
  float* U = p.U + kv_at(p, bh, z);
  for (int k0 = 0; k0 < p.K; k0 += kTileCols) {
    const int wk = min(kTileCols, p.K - k0);
    for (int v0 = 0; v0 < p.V; v0 += kTileCols) {
      const int wv = min(kTileCols, p.V - v0);
      stage_tile(k_s, p.k, k_row, n, k0, wk, f);
      stage_tile(v_s, p.v, v_row, n, v0, wv, NoScale{});
      __syncthreads();  // tiles complete before the products
      for (int idx = threadIdx.x; idx < wk * wv; idx += blockDim.x) {
        const int kk = idx / wv, x = idx % wv;
        float acc = 0.f;
        for (int j = 0; j < n; ++j) acc += k_s[j * kTileLd + kk] * v_s[j * kTileLd + x];
        U[long(k0 + kk) * p.V + v0 + x] = acc;
      }
      __syncthreads();  // products done before the next tiles
    }
  }
}

// Stage 3: the level-e state entering every chunk. grid.z = level, grid.y = stream, each thread
// one (k, v) element scanning the chunks in order (writer / reader / reset masks of SPEC.md §5).
template <class In>
__global__ void chunked_fwd_stage3_level_states(ChunkedParams<In> p) {
  const int e = blockIdx.z, bh = blockIdx.y;
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= p.K * p.V) return;
  const float* gam = p.gamma + long(bh) * p.T;
  const int b = bh / p.H, Tb = seq_len(p, b), Nb = seq_chunks(p, b);  // this sequence's own chunks
  float H = 0.f;
  for (int z = 0; z < Nb; ++z) {
    p.Hin[hin_at(p, e, bh, z) + idx] = H;
    const float Gamma = gam[min(z * p.C + p.C, Tb) - 1];
    H = is_reset(p, z, e) ? 0.f : expf(Gamma) * H;
    if (is_writer(p, z, e)) H += p.U[kv_at(p, bh, z) + idx];
  }
}

// Stage 4: reader rows add lam_i[c+1+e] exp(gamma_i) Hin_e[z]^T q_i, all levels of the chunk in
// one block (in order of e, so no atomics are needed).
// Register blocking: each thread owns one column x and kRows rows, so every Hin element read from
// global memory serves kRows rows instead of being re-read once per row (the K x V states are the
// largest stream of the forward). The chunk's q rows sit in dynamic shared memory (C x K floats,
// rows >= n zeroed so the row loop needs no bound); a warp's threads share the rows, so their
// q_s reads are broadcasts.
constexpr int kRows = 8;
template <class In>
__global__ void chunked_fwd_stage4_level_output(ChunkedParams<In> p) {
  extern __shared__ float q_s[];
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  if (n <= 0) return;  // a chunk slot past a packed sequence's end
  const int rows = (n + kRows - 1) / kRows * kRows;
  for (int idx = threadIdx.x; idx < rows * p.K; idx += blockDim.x) {
    const int i = idx / p.K, kk = idx % p.K;
    q_s[idx] = i < n ? ldf(p.q, qk_at(p, b, r0 + i, gr) + kk) : 0.f;
  }
  __syncthreads();  // q_s complete before any thread reads other rows
  for (int idx = threadIdx.x; idx < rows / kRows * p.V; idx += blockDim.x) {
    const int x = idx % p.V, i0 = idx / p.V * kRows;
    float acc[kRows] = {};
    for (int e = 0; e < p.E; ++e) {
      if (!is_reader(p, z, e)) continue;
      const float* Hz = p.Hin + hin_at(p, e, bh, z);
      float dot[kRows] = {};
      for (int kk = 0; kk < p.K; ++kk) {
        const float hv = Hz[long(kk) * p.V + x];
#pragma unroll
        for (int r = 0; r < kRows; ++r) dot[r] += q_s[(i0 + r) * p.K + kk] * hv;
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (i0 + r < n) acc[r] += p.lam[lam_at(p, b, r0 + i0 + r, h) + p.c + 1 + e] * expf(gam[i0 + r]) * dot[r];
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      if (i0 + r < n) p.o[v_at(p, b, r0 + i0 + r, h) + x] += acc[r];
  }
}

template <class In>
void launch_fwd_local_cumsum(const ChunkedParams<In>& p, cudaStream_t s) {
  chunked_fwd_local_cumsum<<<dim3(p.N, p.B * p.H), 32, 0, s>>>(p);
}
template <class In>
void launch_fwd_stage2_summaries(const ChunkedParams<In>& p, cudaStream_t s) {
  const std::size_t smem = 2 * std::size_t(p.C) * kTileLd * sizeof(float);
  set_dynamic_smem(chunked_fwd_stage2_summaries<In>, smem);
  chunked_fwd_stage2_summaries<In><<<dim3(p.N, p.B * p.H), 256, smem, s>>>(p);
}
template <class In>
void launch_fwd_stage3_level_states(const ChunkedParams<In>& p, cudaStream_t s) {
  chunked_fwd_stage3_level_states<<<dim3((p.K * p.V + 127) / 128, p.B * p.H, p.E), 128, 0, s>>>(p);
}

template <class In>
void launch_chunked_forward_ffma(const ChunkedParams<In>& p, cudaStream_t s) {
  const dim3 chunks(p.N, p.B * p.H);
  set_dynamic_smem(chunked_fwd_stage1_intra<In>, stage1_fwd_smem(p.C));
  chunked_fwd_stage1_intra<In><<<chunks, 256, stage1_fwd_smem(p.C), s>>>(p);
  if (p.E == 0) return;  // T <= C: no chunk levels, stage 1 is the whole output
  launch_fwd_stage2_summaries(p, s);
  launch_fwd_stage3_level_states(p, s);
  const int C = p.C < 64 ? p.C : 64;
  const size_t q_shmem = size_t((C + kRows - 1) / kRows * kRows) * p.K * sizeof(float);
  set_dynamic_smem(chunked_fwd_stage4_level_output<In>, q_shmem);
  chunked_fwd_stage4_level_output<In><<<chunks, 256, q_shmem, s>>>(p);
}

#define LOGLINEAR_INSTANTIATE(In)                                                          \
  template void launch_fwd_local_cumsum<In>(const ChunkedParams<In>&, cudaStream_t);        \
  template void launch_fwd_stage2_summaries<In>(const ChunkedParams<In>&, cudaStream_t);    \
  template void launch_fwd_stage3_level_states<In>(const ChunkedParams<In>&, cudaStream_t); \
  template void launch_chunked_forward_ffma<In>(const ChunkedParams<In>&, cudaStream_t);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(__nv_bfloat16)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::cuda
