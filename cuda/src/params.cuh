// One parameter struct for every kernel (STYLE.md "CUDA"): device pointers, sizes and strides,
// filled by the host API after validation and passed by value.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace loglinear::cuda {

/// Sizes and device pointers of one chunked call (time-first layout).
///
/// `In` is the storage type of q, k, v and dout: float or __nv_bfloat16. Everything the kernels
/// accumulate into (o, the gradients, the chunk summaries and level states) is float32, and so
/// are g and lambda: the chunk-local cumulative sum gamma of g feeds exp(gamma_i - gamma_j), whose
/// relative error is the absolute error of gamma, which bf16 (8 bits of mantissa) would make ~1e-2
/// at |gamma| ~ 4. For In = bf16 the host API converts the float32 o / dq / dk / dv to bf16 at the end.
template <class In>
struct ChunkedParams {
  int B, T, H, G, K, V, L;  // sizes as in SPEC.md §1
  int C, c, N, E;           // chunk size, log2 C, number of chunks, number of chunk levels
  const In *q, *k, *v;      // inputs [B,T,G,K], [B,T,G,K], [B,T,H,V]
  const float *g, *lam;     // [B,T,H], [B,T,H,L]
  float* gamma;             // [B,H,T] chunk-local cumulative log-decay
  float* U;                 // [B,H,N,K,V] chunk summaries (stage 2)
  float* Hin;               // [E,B,H,N,K,V] level states entering each chunk (stage 3)
  float* o;                 // [B,T,H,V] output (forward)
  const In* dout;           // [B,T,H,V] output gradient (backward)
  float *dq, *dk, *dv, *dlam, *dg;  // gradients, same layouts as the inputs
  float* dU;                // [B,H,N,K,V] gradient of the chunk summaries, summed over levels
  __host__ __device__ int heads_per_group() const { return H / G; }
};

/// Loads one input element as float (the kernels compute in float32 whatever the storage type).
__device__ __forceinline__ float ldf(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float ldf(const __nv_bfloat16* p, long i) { return __bfloat162float(p[i]); }

/// Throws std::runtime_error("<call>: <cuda error string>") on failure.
inline void check_cuda(cudaError_t err, const char* call) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(call) + ": " + cudaGetErrorString(err));
}
#define LOGLINEAR_CUDA_CHECK(call) ::loglinear::cuda::check_cuda((call), #call)

/// Forward stage launchers (chunked_fwd.cu), also replayed by the backward launcher and the
/// tensor-core forward. Host functions rather than shared kernel templates: a __global__
/// template launched from another translation unit needs relocatable device code.
template <class In> void launch_fwd_cumsum(const ChunkedParams<In>& p, cudaStream_t stream);
template <class In> void launch_fwd_summary(const ChunkedParams<In>& p, cudaStream_t stream);
template <class In> void launch_fwd_level_state(const ChunkedParams<In>& p, cudaStream_t stream);

/// Launchers (chunked_fwd.cu, chunked_bwd.cu): all kernels of one direction, in stage order.
/// Instantiated for In = float and In = __nv_bfloat16. The forward writes p.o (float32); the
/// backward expects dq, dk, dv, dlam and dU zeroed and writes every gradient.
template <class In> void launch_chunked_forward(const ChunkedParams<In>& p, cudaStream_t stream);
template <class In> void launch_chunked_backward(const ChunkedParams<In>& p, cudaStream_t stream);

/// True if the tensor-core (WMMA bf16) forward of chunked_fwd_tc.cu handles these sizes:
/// K and V multiples of 16 up to 128 and C >= 16.
bool tensor_core_forward_supported(int K, int V, int C);
/// Stages 1 + 4 (fused) and 2 of the forward on tensor cores, bf16 operands, float32 accumulation
/// (chunked_fwd_tc.cu); expects gamma from launch_fwd_cumsum.
void launch_chunked_forward_tc(const ChunkedParams<__nv_bfloat16>& p, cudaStream_t stream);
/// Stage 2 alone on tensor cores (the backward replays it).
void launch_fwd_summary_tc(const ChunkedParams<__nv_bfloat16>& p, cudaStream_t stream);
/// The backward's block GEMMs on tensor cores (chunked_bwd_tc.cu), for the sizes that
/// tensor_core_forward_supported accepts: replays stages 2-3, then the intra-chunk, level and
/// summary gradients. Expects gamma, zeroed gradients; the caller runs the dg kernel after it.
void launch_chunked_backward_tc(const ChunkedParams<__nv_bfloat16>& p, cudaStream_t stream);

}  // namespace loglinear::cuda
