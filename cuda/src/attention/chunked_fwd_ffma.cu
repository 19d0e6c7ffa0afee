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
  const int r0 = z * p.C, r1 = min(r0 + p.C, p.T);
  float acc = 0.f;
  for (int r = r0; r < r1; ++r) {
    acc += p.g[g_at(p, b, r, h)];
    p.gamma[long(bh) * p.T + r] = acc;
  }
}

// Stage 1: o_i = sum_{j<=i} (q_i.k_j) exp(gamma_i - gamma_j) lam_i[ell(i,j)] v_j within a chunk.
// Shared memory holds the masked C x C block (at most 64 x 65 floats; +1 column against bank
// conflicts on the column-wise reads of the second phase).
template <class In>
__global__ void chunked_fwd_stage1_intra(ChunkedParams<In> p) {
  __shared__ float A[64][65];
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
    const int i = idx / n, j = idx % n;
    float a = 0.f;
    if (j <= i) {
      const In* qi = p.q + qk_at(p, b, r0 + i, gr);
      const In* kj = p.k + qk_at(p, b, r0 + j, gr);
      for (int x = 0; x < p.K; ++x) a += ldf(qi, x) * ldf(kj, x);
      a *= expf(gam[i] - gam[j]) * p.lam[lam_at(p, b, r0 + i, h) + level_in_chunk(i, j)];
    }
    A[i][j] = a;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < n * p.V; idx += blockDim.x) {
    const int i = idx / p.V, x = idx % p.V;
    float acc = 0.f;
    for (int j = 0; j <= i; ++j) acc += A[i][j] * ldf(p.v, v_at(p, b, r0 + j, h) + x);
    p.o[v_at(p, b, r0 + i, h) + x] = acc;
  }
}

// Stage 2: U_z = sum_j exp(Gamma_z - gamma_j) k_j v_j^T; one thread per (k, v) element.
template <class In>
__global__ void chunked_fwd_stage2_summaries(ChunkedParams<In> p) {
  const auto [z, bh, b, h, gr, r0, n, gam] = chunk_block(p);
  const float Gamma = gam[n - 1];
  for (int idx = threadIdx.x; idx < p.K * p.V; idx += blockDim.x) {
    const int kk = idx / p.V, x = idx % p.V;
    float acc = 0.f;
    for (int j = 0; j < n; ++j)
      acc += expf(Gamma - gam[j]) * ldf(p.k, qk_at(p, b, r0 + j, gr) + kk) * ldf(p.v, v_at(p, b, r0 + j, h) + x);
    p.U[kv_at(p, bh, z) + idx] = acc;
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
  float H = 0.f;
  for (int z = 0; z < p.N; ++z) {
    p.Hin[hin_at(p, e, bh, z) + idx] = H;
    const float Gamma = gam[min(z * p.C + p.C, p.T) - 1];
    H = is_reset(z, e) ? 0.f : expf(Gamma) * H;
    if (is_writer(z, e)) H += p.U[kv_at(p, bh, z) + idx];
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
      if (!is_reader(z, e)) continue;
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
  chunked_fwd_stage2_summaries<<<dim3(p.N, p.B * p.H), 256, 0, s>>>(p);
}
template <class In>
void launch_fwd_stage3_level_states(const ChunkedParams<In>& p, cudaStream_t s) {
  chunked_fwd_stage3_level_states<<<dim3((p.K * p.V + 127) / 128, p.B * p.H, p.E), 128, 0, s>>>(p);
}

template <class In>
void launch_chunked_forward_ffma(const ChunkedParams<In>& p, cudaStream_t s) {
  const dim3 chunks(p.N, p.B * p.H);
  chunked_fwd_stage1_intra<In><<<chunks, 256, 0, s>>>(p);
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
