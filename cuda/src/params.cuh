// One parameter struct for every kernel (STYLE.md "CUDA"): device pointers, sizes and strides,
// filled by the host API after validation and passed by value.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace loglinear::cuda {

/// Sizes and device pointers of one chunked call (float32, time-first layout).
struct ChunkedParams {
  int B, T, H, G, K, V, L;  // sizes as in SPEC.md §1
  int C, c, N, E;           // chunk size, log2 C, number of chunks, number of chunk levels
  const float *q, *k, *v, *g, *lam;  // inputs
  float* gamma;             // [B,H,T] chunk-local cumulative log-decay
  float* U;                 // [B,H,N,K,V] chunk summaries (stage 2)
  float* Hin;               // [E,B,H,N,K,V] level states entering each chunk (stage 3)
  float* o;                 // [B,T,H,V] output (forward)
  const float* dout;        // [B,T,H,V] output gradient (backward)
  float *dq, *dk, *dv, *dlam, *dg;  // gradients, same layouts as the inputs
  float* dU;                // [B,H,N,K,V] gradient of the chunk summaries, summed over levels
  __host__ __device__ int heads_per_group() const { return H / G; }
};

/// Throws std::runtime_error("<call>: <cuda error string>") on failure.
inline void check_cuda(cudaError_t err, const char* call) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(call) + ": " + cudaGetErrorString(err));
}
#define LOGLINEAR_CUDA_CHECK(call) ::loglinear::cuda::check_cuda((call), #call)

/// Forward stage kernels (chunked_fwd.cu), also replayed by the backward launcher.
__global__ void chunked_fwd_cumsum_kernel(ChunkedParams p);
__global__ void chunked_fwd_summary_kernel(ChunkedParams p);
__global__ void chunked_fwd_level_state_kernel(ChunkedParams p);

/// Launchers (chunked_fwd.cu, chunked_bwd.cu): all kernels of one direction, in stage order.
void launch_chunked_forward(const ChunkedParams& p, cudaStream_t stream);
void launch_chunked_backward(const ChunkedParams& p, cudaStream_t stream);

}  // namespace loglinear::cuda
