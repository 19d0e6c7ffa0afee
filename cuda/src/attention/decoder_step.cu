// Kernels of one recurrent decoding step for B x H streams (SPEC.md §4), the GPU twin of
// FenwickHeadState::insert + read (reference/loglinear/attention/fenwick_state.hpp): O(L K V) per
// stream and token, update then read. The public entry points are in decoder_api.cu.
//
// Two versions, both kept so that the benchmark (bench/gpu/bench_decode.cu) times them in one
// sitting. v1 (two kernels): the update kernel reads and writes every live level (cascade, decay,
// insert), then the read kernel reads every level again: three passes over the state, two
// launches. v2 (one kernel, the default): each thread updates its (k, x) elements of every level
// in registers, writes them once and adds lam_l q_k S_l[k, x] on the way; the warps of a block
// then sum their rows for the block's 32 columns. Two passes (one read, one write) and one
// launch. The step is memory-bound for large B (the state is B H levels K V floats) and
// launch-bound for small B.
#include "../cuda_check.cuh"
#include "launch.cuh"

namespace loglinear::cuda {

// Cascade, decay, insert: one thread per (k, v) element of one stream. At step t >= 1 the
// levels 0..m (m = trailing one bits of t-1) are full and spill into level m+1.
__global__ void decode_step_update(DecodeParams p) {
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / (p.H / p.G);
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= p.K * p.V) return;
  const int kk = idx / p.V, x = idx % p.V;
  float* S = p.S + long(bh) * p.Lmax * p.K * p.V + idx;
  const long level_stride = long(p.K) * p.V;
  if (p.t >= 1) {
    const int m = __ffsll(~(p.t - 1)) - 1;  // trailing ones of t-1
    float sum = 0.f;
    for (int l = 0; l <= m; ++l) {
      sum += S[l * level_stride];
      S[l * level_stride] = 0.f;
    }
    S[(m + 1) * level_stride] += sum;
  }
  const float a = expf(p.g[long(b) * p.H + h]);
  for (int l = 1; l < p.levels; ++l) S[l * level_stride] *= a;
  S[0] = p.k[(long(b) * p.G + gr) * p.K + kk] * p.v[(long(b) * p.H + h) * p.V + x];
}

// o_t = sum_l lam_t[l] S[l]^T q_t: one thread per output element.
__global__ void decode_step_read(DecodeParams p) {
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / (p.H / p.G);
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  if (x >= p.V) return;
  const float* S = p.S + long(bh) * p.Lmax * p.K * p.V;
  const float* q = p.q + (long(b) * p.G + gr) * p.K;
  float acc = 0.f;
  for (int l = 0; l < p.levels; ++l) {
    float dot = 0.f;
    for (int kk = 0; kk < p.K; ++kk) dot += q[kk] * S[(long(l) * p.K + kk) * p.V + x];
    acc += p.lam[(long(b) * p.H + h) * p.L + l] * dot;
  }
  p.o[(long(b) * p.H + h) * p.V + x] = acc;
}

// num_levels(n) of core/fenwick.hpp on the device: 1 for n <= 1, else ceil(log2 n) + 1.
__device__ __forceinline__ int device_num_levels(long long n) { return n <= 1 ? 1 : 65 - __clzll(n - 1); }

// v2: update and read fused. Block (32 columns x 8 warps) per 32 output columns of one stream:
// lane = column x, warp w takes the rows k = w, w + 8, ...; per element the same arithmetic, in
// the same level order, as decode_step_update followed by decode_step_read.
//
// Only the num_levels(t) levels a stream holds before the step are read; a level it reaches for
// the first time starts from zero, and levels above its live ones are written as zeros, so the
// state's padding may hold anything (it is zero afterwards), unless p.padding_is_zero says the
// caller keeps it zero (an in-place decoder): then they are not touched.
//
// A ragged batch (p.stream_tokens set: streams at different positions, e.g. after a packed
// prefill of prompts of different lengths) differs only in each stream's own count t_b: its
// cascade (m) and its levels before and after the step. A count outside [0, p.t] cannot be a
// valid position for this state: that stream's output is NaN and its state is left as it was
// (no read or write outside the levels the checks allowed).
constexpr int kDecodeWarps = 8;
__global__ void __launch_bounds__(32 * kDecodeWarps) decode_step_fused(DecodeParams p) {
  __shared__ float partial[kDecodeWarps][32];
  const int bh = blockIdx.y, b = bh / p.H, h = bh % p.H, gr = h / (p.H / p.G);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, x = blockIdx.x * 32 + lane;
  const long long t = p.stream_tokens ? static_cast<long long>(p.stream_tokens[b]) : p.t;
  if (t < 0 || t > p.t) {  // the whole block (one stream) leaves together: no barrier is skipped
    if (warp == 0 && x < p.V) p.o[(long(b) * p.H + h) * p.V + x] = __int_as_float(0x7fc00000);  // NaN
    return;
  }
  const int held = t >= 1 ? device_num_levels(t) : 0;  // levels holding tokens before the step
  const int live = device_num_levels(t + 1);            // after it (<= p.levels)
  // Levels 0..m are full at step t >= 1 and spill into level m + 1 (m = trailing ones of t - 1);
  // m = -1 at t = 0 (nothing to cascade).
  const int m = t >= 1 ? __ffsll(~(t - 1)) - 1 : -1;
  const float a = expf(p.g[long(b) * p.H + h]);
  const float* q = p.q + (long(b) * p.G + gr) * p.K;
  const float* k = p.k + (long(b) * p.G + gr) * p.K;
  const float* lam = p.lam + (long(b) * p.H + h) * p.L;
  const long level_stride = long(p.K) * p.V;
  float acc = 0.f;
  if (x < p.V) {
    const float vx = p.v[(long(b) * p.H + h) * p.V + x];
    float* S = p.S + long(bh) * p.Lmax * level_stride + x;
    for (int kk = warp; kk < p.K; kk += kDecodeWarps) {
      float* Sk = S + long(kk) * p.V;
      float carry = 0.f, row = 0.f;
      for (int l = 0; l < p.levels; ++l) {
        if (l >= live) {  // above this stream's live levels: padding
          if (p.padding_is_zero) break;
          Sk[l * level_stride] = 0.f;
          continue;
        }
        const float old = l < held ? Sk[l * level_stride] : 0.f;
        float s;
        if (l <= m) {
          carry += old;
          s = 0.f;
        } else {
          s = l == m + 1 ? old + carry : old;
        }
        if (l >= 1) s *= a;
        if (l == 0) s = k[kk] * vx;
        Sk[l * level_stride] = s;
        row += lam[l] * s;
      }
      acc += q[kk] * row;
    }
  }
  partial[warp][lane] = acc;
  __syncthreads();
  if (warp == 0 && x < p.V) {
    float o = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) o += partial[w][lane];
    p.o[(long(b) * p.H + h) * p.V + x] = o;
  }
}

void launch_decode_step(const DecodeParams& p, cudaStream_t s) {
  decode_step_fused<<<dim3((p.V + 31) / 32, p.B * p.H), 32 * kDecodeWarps, 0, s>>>(p);
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

void launch_decode_step_v1(const DecodeParams& p, cudaStream_t s) {
  decode_step_update<<<dim3((p.K * p.V + 127) / 128, p.B * p.H), 128, 0, s>>>(p);
  decode_step_read<<<dim3((p.V + 127) / 128, p.B * p.H), 128, 0, s>>>(p);
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace loglinear::cuda
