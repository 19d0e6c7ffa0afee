// The carried Fenwick state of a chunked call on the GPU (SPEC.md §4): the CUDA twins of the CPU's
// initial_state_output, final_state and their backward passes (reference/loglinear/attention/
// chunked_stages.cpp; docs/backward.md). A call that continues t0 earlier tokens is given their
// level states S0 [B,H,L0,K,V]; its output gains the terms of those states, and the state after its
// last token is the carried buckets, decayed by the whole call and placed at their levels seen from
// the last token, plus the call's own tokens. The four stages see only the call's own tokens (their
// level scans start empty at the call's first chunk z0), so these kernels run beside them.
// Cost: O(T L0 K V) for the carried terms (every row reads every carried level), O(T K V + Lf K V)
// for the final state. One thread per output element, grid-stride loops; atomics only where the
// stages use them too (dq, dk shared by the heads of a group) and for dlam (summed over k).
#include "../cuda_check.cuh"
#include "indexing.cuh"
#include "launch.cuh"

#include <algorithm>

namespace loglinear::cuda {

namespace {

/// Token range [begin, end) of bucket l of the prefix [0, t] (SPEC.md §2; the CPU's buckets()):
/// {t} for l = 0; for l >= 1, with h = 2^(l-1) and t' = t with its low l-1 bits cleared,
/// [t' - h, t') if bit l-1 of t is set, else empty.
__device__ __forceinline__ void bucket_range(long long t, int l, long long& begin, long long& end) {
  if (l == 0) {
    begin = t; end = t + 1;
    return;
  }
  const long long h = 1LL << (l - 1);
  if (!(t & h)) {
    begin = end = 0;
    return;
  }
  end = t & ~(h - 1);
  begin = end - h;
}

/// K x V state m of stream bh in a [B*H, levels, K, V] buffer.
__device__ __forceinline__ long state_at(int bh, int levels, int m, int K, int V) {
  return (long(bh) * levels + m) * K * V;
}

/// A grid for n elements, one per thread, capped (the kernels loop with a grid stride).
inline unsigned blocks_for(long n, int threads) {
  return unsigned(std::min<long>((n + threads - 1) / threads, 65535));
}

constexpr int kScanThreads = 1024;

}  // namespace

// Gpre[r] = g_0 + ... + g_r and Gsuf[r] = g_{r+1} + ... + g_{n-1} of every stream: the decay from
// the carried state (at token t0 - 1) to row r, and from row r to the sequence's last row n - 1
// (n = T, or a packed sequence's own length: seq_len). One block per stream; each thread sums a
// contiguous run of rows, the runs are combined in shared memory (as the decay-gradient scan
// does). The suffix is summed on its own, not taken as Gpre[n-1] - Gpre[r], which would cancel in
// float32 over long calls (the CPU walks it backwards for that).
template <class In>
__global__ void __launch_bounds__(kScanThreads) chunked_state_decay_sums(ChunkedParams<In> p) {
  __shared__ float before[kScanThreads], after[kScanThreads];  // sums of the runs before / after
  const int bh = blockIdx.x, b = bh / p.H, h = bh % p.H, n = seq_len(p, b);
  const int per = (n + kScanThreads - 1) / kScanThreads;
  const int r0 = min(int(threadIdx.x) * per, n), r1 = min(r0 + per, n);
  float run = 0.f;
  for (int r = r0; r < r1; ++r) run += p.g[g_at(p, b, r, h)];
  before[threadIdx.x] = run;
  after[threadIdx.x] = run;
  __syncthreads();  // every run's sum is in shared memory
  if (threadIdx.x == 0) {
    float acc = 0.f;
    for (int i = 0; i < kScanThreads; ++i) {
      const float x = before[i];
      before[i] = acc;
      acc += x;
    }
    acc = 0.f;
    for (int i = kScanThreads - 1; i >= 0; --i) {
      const float x = after[i];
      after[i] = acc;
      acc += x;
    }
  }
  __syncthreads();  // exclusive prefix and suffix sums of the runs ready
  float* Gpre = p.Gpre + long(bh) * p.T;
  float* Gsuf = p.Gsuf + long(bh) * p.T;
  float acc = before[threadIdx.x];
  for (int r = r0; r < r1; ++r) {
    acc += p.g[g_at(p, b, r, h)];
    Gpre[r] = acc;
  }
  acc = after[threadIdx.x];
  for (int r = r1 - 1; r >= r0; --r) {
    Gsuf[r] = acc;
    acc += p.g[g_at(p, b, r, h)];
  }
}

// Forward, the carried terms: o_r += exp(Gpre_r) sum_m lam_r[ell(t0 + r, rep_m)] S0[m]^T q_r over
// the carried buckets m that are not empty (rep_m: the bucket's last token). One thread per (row,
// value column) of every stream (grid.y).
template <class In>
__global__ void chunked_state_initial_output(ChunkedParams<In> p) {
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const long n = long(p.T) * p.V;
  for (long idx = blockIdx.x * long(blockDim.x) + threadIdx.x; idx < n; idx += long(gridDim.x) * blockDim.x) {
    const int r = int(idx / p.V), x = int(idx % p.V);
    const float* lam = p.lam + lam_at(p, b, r, h);
    const long q0 = qk_at(p, b, r, gr);
    float acc = 0.f;
    for (int m = 0; m < p.L0; ++m) {
      const long long rep = bucket_representative(p.t0 - 1, m);
      if (rep < 0) continue;
      const float* S = p.S0 + state_at(bh, p.L0, m, p.K, p.V);
      float dot = 0.f;
      for (int kk = 0; kk < p.K; ++kk) dot += ldf(p.q, q0 + kk) * S[long(kk) * p.V + x];
      acc += lam[level_of(p.t0 + r, rep)] * dot;
    }
    p.o[v_at(p, b, r, h) + x] += expf(p.Gpre[long(bh) * p.T + r]) * acc;
  }
}

// The state after the call's last token tf = t0 + n - 1 (the CPU's final_state; n = T, or a packed
// sequence's own length): level l holds the call's rows r in bucket B_l(tf), each as
// exp(Gsuf_r) k_r v_r^T, plus exp(G_all) S0[m] for every carried bucket m inside B_l(tf) (a
// carried bucket moves whole: buckets nest). A bucket is one run of tokens, so the thread of
// (level l = grid.z, element (k, v)) walks only its bucket's rows: O(T K V) in all. Writes S_out
// [B,H,Lf,K,V] whole (empty buckets, and the levels above a shorter packed sequence's, get zero).
template <class In>
__global__ void chunked_state_final(ChunkedParams<In> p, float* S_out) {
  const int l = blockIdx.z, bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= p.K * p.V) return;
  const int kk = idx / p.V, x = idx % p.V, n = seq_len(p, b);
  const long long tf = p.t0 + n - 1;
  long long begin, end;
  bucket_range(tf, l, begin, end);
  const float* Gsuf = p.Gsuf + long(bh) * p.T;
  float acc = 0.f;
  for (long long t = begin > p.t0 ? begin : p.t0; t < end; ++t) {
    const int r = int(t - p.t0);
    acc += expf(Gsuf[r]) * ldf(p.k, qk_at(p, b, r, gr) + kk) * ldf(p.v, v_at(p, b, r, h) + x);
  }
  const float all = expf(p.Gpre[long(bh) * p.T + n - 1]);  // the whole call's decay
  for (int m = 0; m < p.L0; ++m) {
    const long long rep = bucket_representative(p.t0 - 1, m);
    if (rep >= 0 && level_of(tf, rep) == l) acc += all * p.S0[state_at(bh, p.L0, m, p.K, p.V) + idx];
  }
  S_out[state_at(bh, p.Lf, l, p.K, p.V) + idx] = acc;
}

// Backward of the carried terms for dq and dlam: with y_m = S0[m] dout_r (row kk of it),
// dq_r[kk] += exp(Gpre_r) sum_m lam_r[l_m] y_m and dlam_r[l_m] += exp(Gpre_r) q_r[kk] y_m
// (l_m = ell(t0 + r, rep_m); several m can share a level). One thread per (row, key column).
template <class In>
__global__ void chunked_state_initial_output_bwd_q(ChunkedParams<In> p) {
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const long n = long(p.T) * p.K;
  for (long idx = blockIdx.x * long(blockDim.x) + threadIdx.x; idx < n; idx += long(gridDim.x) * blockDim.x) {
    const int r = int(idx / p.K), kk = int(idx % p.K);
    const float decay = expf(p.Gpre[long(bh) * p.T + r]);
    const float* lam = p.lam + lam_at(p, b, r, h);
    float* dlam = p.dlam + lam_at(p, b, r, h);
    const long d0 = v_at(p, b, r, h);
    const float q = ldf(p.q, qk_at(p, b, r, gr) + kk);
    float dq = 0.f;
    for (int m = 0; m < p.L0; ++m) {
      const long long rep = bucket_representative(p.t0 - 1, m);
      if (rep < 0) continue;
      const float* S = p.S0 + state_at(bh, p.L0, m, p.K, p.V) + long(kk) * p.V;
      float y = 0.f;
      for (int x = 0; x < p.V; ++x) y += S[x] * ldf(p.dout, d0 + x);
      const int l = level_of(p.t0 + r, rep);
      dq += lam[l] * y;
      atomicAdd(&dlam[l], decay * q * y);
    }
    atomicAdd(&p.dq[qk_at(p, b, r, gr) + kk], decay * dq);
  }
}

// The carried state's gradient: dS0[m] = sum_r lam_r[l_m(r)] exp(Gpre_r) q_r dout_r^T (the carried
// terms) + exp(G_all) dS_final[ell(tf, rep_m)] (the state moved into the final one); zero for an
// empty bucket. One thread per (level m = grid.z, element (k, v)), walking the rows.
template <class In>
__global__ void chunked_state_initial_grad(ChunkedParams<In> p) {
  const int m = blockIdx.z, bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= p.K * p.V) return;
  const int kk = idx / p.V, x = idx % p.V;
  const long long rep = bucket_representative(p.t0 - 1, m);
  float acc = 0.f;
  if (rep >= 0) {
    const float* Gpre = p.Gpre + long(bh) * p.T;
    for (int r = 0; r < p.T; ++r) {
      const float w = p.lam[lam_at(p, b, r, h) + level_of(p.t0 + r, rep)] * expf(Gpre[r]);
      acc += w * ldf(p.q, qk_at(p, b, r, gr) + kk) * ldf(p.dout, v_at(p, b, r, h) + x);
    }
    if (p.dS_final) {
      const long long tf = p.t0 + p.T - 1;
      acc += expf(Gpre[p.T - 1]) * p.dS_final[state_at(bh, p.Lf, level_of(tf, rep), p.K, p.V) + idx];
    }
  }
  p.dS0[state_at(bh, p.L0, m, p.K, p.V) + idx] = acc;
}

// Backward of the final state's own rows: with dF = dS_final[ell(tf, t0 + r)],
// dk_r += exp(Gsuf_r) dF v_r (one thread per (row, key column)) and
// dv_r += exp(Gsuf_r) dF^T k_r (one thread per (row, value column)).
template <class In>
__global__ void chunked_state_final_bwd_k(ChunkedParams<In> p) {
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const long long tf = p.t0 + p.T - 1;
  const long n = long(p.T) * p.K;
  for (long idx = blockIdx.x * long(blockDim.x) + threadIdx.x; idx < n; idx += long(gridDim.x) * blockDim.x) {
    const int r = int(idx / p.K), kk = int(idx % p.K);
    const float* dF = p.dS_final + state_at(bh, p.Lf, level_of(tf, p.t0 + r), p.K, p.V) + long(kk) * p.V;
    const long v0 = v_at(p, b, r, h);
    float acc = 0.f;
    for (int x = 0; x < p.V; ++x) acc += dF[x] * ldf(p.v, v0 + x);
    atomicAdd(&p.dk[qk_at(p, b, r, gr) + kk], expf(p.Gsuf[long(bh) * p.T + r]) * acc);
  }
}

template <class In>
__global__ void chunked_state_final_bwd_v(ChunkedParams<In> p) {
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / p.heads_per_group();
  const long long tf = p.t0 + p.T - 1;
  const long n = long(p.T) * p.V;
  for (long idx = blockIdx.x * long(blockDim.x) + threadIdx.x; idx < n; idx += long(gridDim.x) * blockDim.x) {
    const int r = int(idx / p.V), x = int(idx % p.V);
    const float* dF = p.dS_final + state_at(bh, p.Lf, level_of(tf, p.t0 + r), p.K, p.V) + x;
    const long k0 = qk_at(p, b, r, gr);
    float acc = 0.f;
    for (int kk = 0; kk < p.K; ++kk) acc += ldf(p.k, k0 + kk) * dF[long(kk) * p.V];
    p.dv[v_at(p, b, r, h) + x] += expf(p.Gsuf[long(bh) * p.T + r]) * acc;
  }
}

// dG_last[bh] = <dS_final, S_final> over every level and element: the gradient with respect to the
// call's total decay, which every term of the final state carries (docs/backward.md; the CPU's
// final_state_backward). One block per stream, a shared-memory tree reduction.
constexpr int kReduceThreads = 256;
template <class In>
__global__ void __launch_bounds__(kReduceThreads) chunked_state_final_decay_grad(ChunkedParams<In> p) {
  __shared__ float part[kReduceThreads];
  const int bh = blockIdx.x;
  const long n = long(p.Lf) * p.K * p.V, base = state_at(bh, p.Lf, 0, p.K, p.V);
  float acc = 0.f;
  for (long i = threadIdx.x; i < n; i += kReduceThreads) acc += p.S_final[base + i] * p.dS_final[base + i];
  part[threadIdx.x] = acc;
  __syncthreads();  // every partial sum stored
  for (int w = kReduceThreads / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();  // this round's sums done before the next reads them
  }
  if (threadIdx.x == 0) p.dG_last[bh] = part[0];
}

template <class In>
void launch_state_forward(const ChunkedParams<In>& p, cudaStream_t s) {
  float* final_state = p.S_final;  // the caller's [B,H,Lf,K,V], or nullptr
  if (p.t0 == 0 && final_state == nullptr) return;
  const int streams = p.B * p.H;
  chunked_state_decay_sums<In><<<streams, kScanThreads, 0, s>>>(p);
  if (p.t0 > 0) chunked_state_initial_output<In><<<dim3(blocks_for(long(p.T) * p.V, 256), streams), 256, 0, s>>>(p);
  if (final_state) {
    chunked_state_final<In><<<dim3((p.K * p.V + 127) / 128, streams, p.Lf), 128, 0, s>>>(p, final_state);
  }
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

template <class In>
void launch_state_backward(const ChunkedParams<In>& p, cudaStream_t s) {
  if (p.t0 == 0 && p.dS_final == nullptr) return;
  const int streams = p.B * p.H;
  chunked_state_decay_sums<In><<<streams, kScanThreads, 0, s>>>(p);
  if (p.t0 > 0) {
    chunked_state_initial_output_bwd_q<In><<<dim3(blocks_for(long(p.T) * p.K, 256), streams), 256, 0, s>>>(p);
    if (p.dS0) chunked_state_initial_grad<In><<<dim3((p.K * p.V + 127) / 128, streams, p.L0), 128, 0, s>>>(p);
  }
  if (p.dS_final) {
    chunked_state_final_bwd_k<In><<<dim3(blocks_for(long(p.T) * p.K, 256), streams), 256, 0, s>>>(p);
    chunked_state_final_bwd_v<In><<<dim3(blocks_for(long(p.T) * p.V, 256), streams), 256, 0, s>>>(p);
    // The final state itself, into the workspace (p.S_final), for <dS_final, S_final>.
    chunked_state_final<In><<<dim3((p.K * p.V + 127) / 128, streams, p.Lf), 128, 0, s>>>(p, p.S_final);
    chunked_state_final_decay_grad<In><<<streams, kReduceThreads, 0, s>>>(p);
  }
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

#define LOGLINEAR_INSTANTIATE(In)                                                                  \
  template void launch_state_forward<In>(const ChunkedParams<In>&, cudaStream_t);               \
  template void launch_state_backward<In>(const ChunkedParams<In>&, cudaStream_t);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(__nv_bfloat16)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::cuda
