// Kernels of one recurrent decoding step for B x H streams (SPEC.md §4), the GPU twin of
// FenwickHeadState::insert + read (reference/loglinear/attention/fenwick_state.hpp): O(L K V) per
// stream and token, update then read. The public entry points are in decoder_api.cu.
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

void launch_decode_step(const DecodeParams& p, cudaStream_t s) {
  decode_step_update<<<dim3((p.K * p.V + 127) / 128, p.B * p.H), 128, 0, s>>>(p);
  decode_step_read<<<dim3((p.V + 127) / 128, p.B * p.H), 128, 0, s>>>(p);
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace loglinear::cuda
