// The parameter structs of the kernels (STYLE.md "CUDA"): sizes, then device pointers, filled
// once by the host API after validation (checks.cu, workspace.cu) and passed by value to every
// kernel. SPEC.md §1 names. Siblings: reference/loglinear/attention/chunked_stages.hpp holds the
// same sizes as ChunkLayout; launch.cuh declares the launchers that take these structs.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace loglinear::cuda {

/// Sizes of one chunked call, as SPEC.md §1 and §5 name them; filled by checks.cu.
struct ChunkedSizes {
  int B, T, H, G, K, V, L;  // batch, tokens, heads, q/k groups, key and value dims, lam levels
  int C, c, N, E;           // chunk size, log2 C, number of chunks, number of chunk levels
  // A call that continues a carried state: t0 tokens came before it (a multiple of C, checks.cu
  // picks C so), its first chunk is chunk z0 = t0 / C of the sequence, the carried state has L0 =
  // num_levels(t0) levels (0 when t0 = 0) and the state after the call Lf = num_levels(t0 + T).
  long long t0, z0;
  int L0, Lf;
  // Packed sequences (cu_seqlens, no carried state): B is then the number of sequences S and T
  // the longest one's length; every per-stream buffer keeps T rows and N chunks per sequence,
  // and the chunk slots past a shorter sequence's end are skipped (indexing.cuh, chunk_block).
  // `tokens` is the rows of the [., T, ...] arrays in all: B * T, or the packed total cu[S].
  bool varlen;
  long long tokens;
  __host__ __device__ int heads_per_group() const { return H / G; }
};

/// Sizes and device pointers of one chunked call (time-first layout).
///
/// `In` is the storage type of q, k, v and dout: float or __nv_bfloat16. Everything the kernels
/// accumulate into (o, the gradients, the chunk summaries and level states) is float32, and so
/// are g and lambda: the chunk-local cumulative sum gamma of g feeds exp(gamma_i - gamma_j), whose
/// relative error is the absolute error of gamma, which bf16 (8 bits of mantissa) would make ~1e-2
/// at |gamma| ~ 4. For In = bf16 the host API converts the float32 o / dq / dk / dv to bf16 at the end.
template <class In>
struct ChunkedParams : ChunkedSizes {
  const In *q, *k, *v;      // inputs [B,T,G,K], [B,T,G,K], [B,T,H,V]
  const float *g, *lam;     // [B,T,H], [B,T,H,L]
  float* gamma;             // [B,H,T] chunk-local cumulative log-decay
  float* U;                 // [B,H,N,K,V] chunk summaries (stage 2)
  float* Hin;               // [E,B,H,N,K,V] level states entering each chunk (stage 3)
  float* o;                 // [B,T,H,V] output (forward)
  const In* dout;           // [B,T,H,V] output gradient (backward)
  float *dq, *dk, *dv, *dlam, *dg;  // gradients, same layouts as the inputs
  float* dU;                // [B,H,N,K,V] gradient of the chunk summaries, summed over levels
  // The carried state (chunked_state.cu; SPEC.md §4 layouts, float32). Null when not used.
  const float* S0;          // [B,H,L0,K,V] state after the t0 earlier tokens (t0 > 0)
  float* S_final;           // [B,H,Lf,K,V] state after the call (forward), or the workspace copy
                            // whose products with dS_final give dG_last (backward)
  const float* dS_final;    // [B,H,Lf,K,V] gradient arriving at the final state (backward)
  float* dS0;               // [B,H,L0,K,V] gradient of the carried state (backward), overwritten
  float *Gpre, *Gsuf;       // [B,H,T] sum of g over rows 0..r and over rows r+1..T-1 (workspace)
  float* dG_last;           // [B*H] <dS_final, S_final>: the gradient w.r.t. the call's total decay
  // Packed sequences: the offsets cu_seqlens [B+1] (in the workspace); null for a dense batch.
  const long long* cu;
};

/// Device pointers and sizes of one decoding step (float32), SPEC.md §4.
struct DecodeParams {
  int B, H, G, K, V, L, Lmax;
  long long t;     // tokens consumed before this step (a ragged batch: the largest stream's)
  int levels;      // num_levels(t + 1): live levels after the step
  float* S;        // [B,H,Lmax,K,V] level states, updated in place
  const float *q, *k, *v, *g, *lam;  // [B,G,K], [B,G,K], [B,H,V], [B,H], [B,H,L]
  float* o;        // [B,H,V]
  // A ragged batch: each stream's own count (device, [B], each in [0, t]); nullptr: t for all.
  // Last, so that a positional initialiser of the fields above leaves them nullptr / false.
  const std::int64_t* stream_tokens;
  // The state's levels above each stream's live ones are zero and stay so (a buffer kept in place
  // across steps): they are not written. false: written as zeros (the padding may hold anything).
  bool padding_is_zero;
};

/// Loads one input element as float (the kernels compute in float32 whatever the storage type).
__device__ __forceinline__ float ldf(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float ldf(const __nv_bfloat16* p, long i) { return __bfloat162float(p[i]); }

}  // namespace loglinear::cuda
