// CUDA backend of the chunked form (SPEC.md §5) and of one recurrent decoding step, float32 and
// bfloat16 storage with float32 accumulation, with the reference's names in namespace loglinear::cuda. The kernels mirror the four numbered
// stages of reference/loglinear/attention/chunked_stages.cpp (cuda/src/chunked_fwd.cu,
// chunked_bwd.cu); tests/cuda/ checks them against the double CPU reference.
#pragma once

#include <loglinear/attention/chunked.hpp>

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace loglinear::cuda {

/// True if a CUDA device is usable (false, without throwing, when there is no GPU or driver).
bool device_available();

/// Name of device 0 and its compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
/// @throws std::runtime_error if no device is available.
std::string device_name();

/// Storage type of q, k, v (and o, dout, dq, dk, dv) on the GPU. g and lambda are float32 in
/// both cases, as are the accumulators and dg, dlam (cuda/src/params.cuh says why).
enum class Precision {
  fp32,  ///< float32 everywhere; FFMA kernels, the exact float32 path (<= 1e-4 vs double)
  bf16,  ///< bfloat16 storage, float32 accumulation; tensor-core (WMMA) forward (<= 1e-2)
};

/// Chunked forward on the GPU from host buffers: validates exactly as loglinear::chunked_forward,
/// copies the inputs in, runs stages 1-4, copies o back.
/// @param in   q, k [B,T,G,K], v [B,T,H,V], g [B,T,H] (<= 0), lam [B,T,H,L] on the host
/// @param o    [B,T,H,V] on the host, overwritten
/// @param opts chunk size C: a power of two <= 64 on the GPU (it bounds the shared-memory tiles);
///        bf16 storage uses the tensor-core kernels for C >= 16 and K, V multiples of 16 up to 128,
///        the FFMA kernels otherwise. B*H <= 65535 and K, V <= 512 on the GPU.
/// @param precision Precision::bf16 rounds q, k, v to bfloat16 on upload and o on the way back
///        (the host buffers stay float); g and lam stay float32.
/// @throws std::invalid_argument on bad shapes or values (before any launch);
/// @throws std::runtime_error naming the failing CUDA call and its error string.
template <class Scalar>
void chunked_forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                     TensorView<Scalar, 4> o, Precision precision = Precision::fp32);

/// Chunked backward on the GPU from host buffers; overwrites `grads` (dq, dk summed over the
/// heads of each group). Same contract as loglinear::chunked_backward; `precision` as in
/// chunked_forward (bf16 also rounds dout on upload and dq, dk, dv on the way back).
template <class Scalar>
void chunked_backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                      Precision precision = Precision::fp32);

/// Device pointers of the inputs of one chunked call, time-first layout as on the CPU:
/// q, k [B,T,G,K] and v [B,T,H,V] of storage type In (float or __nv_bfloat16); g [B,T,H] and
/// lam [B,T,H,L] float32.
template <class In>
struct DeviceInputs {
  const In* q = nullptr;      ///< [B,T,G,K]
  const In* k = nullptr;      ///< [B,T,G,K]
  const In* v = nullptr;      ///< [B,T,H,V]
  const float* g = nullptr;   ///< [B,T,H], log-decay <= 0
  const float* lam = nullptr; ///< [B,T,H,L]
};

/// Device pointers of the gradients, same layouts as DeviceInputs.
template <class In>
struct DeviceGrads {
  In* dq = nullptr;       ///< [B,T,G,K], summed over the heads of each group
  In* dk = nullptr;       ///< [B,T,G,K]
  In* dv = nullptr;       ///< [B,T,H,V]
  float* dg = nullptr;    ///< [B,T,H]
  float* dlam = nullptr;  ///< [B,T,H,L]; levels >= num_levels(T) get zero
};

/// Bytes of device workspace one chunked_forward_device (backward = false) or
/// chunked_backward_device (backward = true) call needs for these sizes and storage type: the
/// chunk-local cumulative decay, the chunk summaries and level states (float32), their gradient,
/// and float32 accumulators of o / dq, dk, dv when the storage type is bf16.
std::size_t chunked_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts, Precision precision,
                                    bool backward);

/// Chunked forward on device buffers, asynchronous on `stream` (no host synchronisation).
/// Sizes, chunk size, pointers and the workspace size are checked before launch; the values on
/// the device are not inspected (the host-buffer overload checks them).
/// @param d sizes B, T, H, G, K, V, L (L >= num_levels(T)); the other fields are ignored
/// @param o [B,T,H,V], overwritten
/// @param in device pointers of q, k, v (storage In), g and lam (float32)
/// @param opts chunk size C: a power of two <= 64 (see chunked_forward)
/// @param workspace device memory of at least chunked_workspace_bytes(d, opts, In's precision, false),
///        256-byte aligned (as cudaMalloc returns)
/// @param workspace_bytes size of `workspace` in bytes (checked against what the call needs)
/// @param stream CUDA stream the kernels are queued on (nullptr: the default stream)
/// @throws std::invalid_argument naming the bad argument; std::runtime_error on a CUDA error.
template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream = nullptr);

/// Chunked backward on device buffers, asynchronous on `stream`; overwrites every gradient.
/// Same checks and workspace contract as chunked_forward_device (with backward = true).
template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream = nullptr);

/// One recurrent decoding step for B x H streams on the GPU (SPEC.md §4), in place on `state`.
///
/// @param state  [B,H,Lmax,K,V] level states after `tokens` tokens (zero-initialised at 0)
/// @param tokens tokens consumed so far (the step consumes token number `tokens`);
///               Lmax >= num_levels(tokens + 1) is required
/// @param q_t    [B,G,K] query of the new token
/// @param k_t    [B,G,K] key of the new token
/// @param v_t    [B,H,V] value of the new token
/// @param g_t    [B,H] log-decay of the new token (<= 0)
/// @param lam_t  [B,H,L] level weights of the new token, L >= num_levels(tokens + 1)
/// @param o_t    [B,H,V], overwritten
/// Host buffers in, host buffers out (the state is copied both ways).
template <class Scalar>
void decode_step(TensorView<Scalar, 5> state, Index tokens, ConstTensorView<Scalar, 3> q_t,
                 ConstTensorView<Scalar, 3> k_t, ConstTensorView<Scalar, 3> v_t,
                 ConstTensorView<Scalar, 2> g_t, ConstTensorView<Scalar, 3> lam_t,
                 TensorView<Scalar, 3> o_t);

/// Sizes of a batch of decoding streams (the decode_step state is [B,H,Lmax,K,V]).
struct DecodeDims {
  Index B = 0;     ///< batch
  Index H = 0;     ///< heads
  Index G = 0;     ///< query/key groups (divides H)
  Index K = 0;     ///< key / state dimension
  Index V = 0;     ///< value dimension
  Index L = 0;     ///< levels allocated in lam_t (>= num_levels(tokens + 1))
  Index Lmax = 0;  ///< levels allocated in the state (>= num_levels(tokens + 1))
};

/// decode_step on device buffers, asynchronous on `stream`: the state stays on the GPU between
/// tokens, which is what a decoding loop needs (the host overload copies it both ways per token).
/// Sizes and pointers are checked before launch; the values are not inspected.
/// @param d      sizes of the streams
/// @param state  [B,H,Lmax,K,V] level states after `tokens` tokens, updated in place
/// @param tokens tokens consumed so far
/// @param q_t    [B,G,K] query of the new token
/// @param k_t    [B,G,K] key of the new token
/// @param v_t    [B,H,V] value of the new token
/// @param g_t    [B,H] log-decay of the new token (<= 0)
/// @param lam_t  [B,H,L] level weights of the new token
/// @param o_t    [B,H,V] output, overwritten
/// @param stream CUDA stream the two kernels are queued on
/// @throws std::invalid_argument naming the bad argument; std::runtime_error on a CUDA error.
void decode_step_device(const DecodeDims& d, float* state, Index tokens, const float* q_t, const float* k_t,
                        const float* v_t, const float* g_t, const float* lam_t, float* o_t,
                        cudaStream_t stream = nullptr);

}  // namespace loglinear::cuda
