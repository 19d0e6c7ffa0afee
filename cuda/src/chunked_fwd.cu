// Forward kernels of the chunked form, one per stage of SPEC.md §5 and of
// reference/loglinear/attention/chunked_stages.cpp (stage numbers identical).
// Version 1: plain FP32 FFMA kernels, correctness first. Parallelism beyond fla's one block per
// (sequence, head): stages 1, 2 and 4 run one block per (chunk, sequence, head); stage 3 runs
// every chunk level at once, one thread per state element, since the levels are independent.
// Tensor cores (tf32 mma) are not used yet: the block GEMMs here are C x C x D with C <= 64.
#include "common.cuh"

namespace loglinear::cuda {

// Chunk-local inclusive cumsum of g (gamma), SPEC.md §5. One warp per (chunk, stream); the
// serial sum over <= 64 rows keeps the summation order of the CPU reference.
__global__ void chunked_fwd_cumsum_kernel(ChunkedParams p) {
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
__global__ void chunked_fwd_intra_kernel(ChunkedParams p) {
  __shared__ float A[64][65];
  const int z = blockIdx.x, bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const int r0 = z * p.C, n = min(p.C, p.T - r0);
  const float* gam = p.gamma + long(bh) * p.T + r0;
  for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
    const int i = idx / n, j = idx % n;
    float a = 0.f;
    if (j <= i) {
      const float* qi = p.q + qk_at(p, b, r0 + i, gr);
      const float* kj = p.k + qk_at(p, b, r0 + j, gr);
      for (int x = 0; x < p.K; ++x) a += qi[x] * kj[x];
      a *= expf(gam[i] - gam[j]) * p.lam[lam_at(p, b, r0 + i, h) + level_in_chunk(i, j)];
    }
    A[i][j] = a;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < n * p.V; idx += blockDim.x) {
    const int i = idx / p.V, x = idx % p.V;
    float acc = 0.f;
    for (int j = 0; j <= i; ++j) acc += A[i][j] * p.v[v_at(p, b, r0 + j, h) + x];
    p.o[v_at(p, b, r0 + i, h) + x] = acc;
  }
}

// Stage 2: U_z = sum_j exp(Gamma_z - gamma_j) k_j v_j^T; one thread per (k, v) element.
__global__ void chunked_fwd_summary_kernel(ChunkedParams p) {
  const int z = blockIdx.x, bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const int r0 = z * p.C, n = min(p.C, p.T - r0);
  const float* gam = p.gamma + long(bh) * p.T + r0;
  const float Gamma = gam[n - 1];
  for (int idx = threadIdx.x; idx < p.K * p.V; idx += blockDim.x) {
    const int kk = idx / p.V, x = idx % p.V;
    float acc = 0.f;
    for (int j = 0; j < n; ++j)
      acc += expf(Gamma - gam[j]) * p.k[qk_at(p, b, r0 + j, gr) + kk] * p.v[v_at(p, b, r0 + j, h) + x];
    p.U[kv_at(p, bh, z) + idx] = acc;
  }
}

// Stage 3: the level-e state entering every chunk. grid.z = level, grid.y = stream, each thread
// one (k, v) element scanning the chunks in order (writer / reader / reset masks of SPEC.md §5).
__global__ void chunked_fwd_level_state_kernel(ChunkedParams p) {
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
__global__ void chunked_fwd_level_output_kernel(ChunkedParams p) {
  const int z = blockIdx.x, bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const int r0 = z * p.C, n = min(p.C, p.T - r0);
  const float* gam = p.gamma + long(bh) * p.T + r0;
  for (int idx = threadIdx.x; idx < n * p.V; idx += blockDim.x) {
    const int i = idx / p.V, x = idx % p.V;
    const float* qi = p.q + qk_at(p, b, r0 + i, gr);
    float acc = 0.f;
    for (int e = 0; e < p.E; ++e) {
      if (!is_reader(z, e)) continue;
      const float* Hz = p.Hin + hin_at(p, e, bh, z);
      float dot = 0.f;
      for (int kk = 0; kk < p.K; ++kk) dot += qi[kk] * Hz[long(kk) * p.V + x];
      acc += p.lam[lam_at(p, b, r0 + i, h) + p.c + 1 + e] * expf(gam[i]) * dot;
    }
    p.o[v_at(p, b, r0 + i, h) + x] += acc;
  }
}

void launch_chunked_forward(const ChunkedParams& p, cudaStream_t s) {
  const dim3 chunks(p.N, p.B * p.H);
  chunked_fwd_cumsum_kernel<<<chunks, 32, 0, s>>>(p);
  chunked_fwd_intra_kernel<<<chunks, 256, 0, s>>>(p);
  if (p.E > 0) {
    chunked_fwd_summary_kernel<<<chunks, 256, 0, s>>>(p);
    const dim3 states((p.K * p.V + 127) / 128, p.B * p.H, p.E);
    chunked_fwd_level_state_kernel<<<states, 128, 0, s>>>(p);
    chunked_fwd_level_output_kernel<<<chunks, 256, 0, s>>>(p);
  }
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace loglinear::cuda
