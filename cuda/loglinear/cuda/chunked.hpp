// CUDA backend of the chunked form (SPEC.md §5) with the reference's names in namespace
// loglinear::cuda: float32 storage on FFMA kernels, bf16 storage with float32 accumulation on
// tensor cores, from host buffers or from device buffers on a caller's stream. Cost as the CPU
// chunked form, O(T C (K+V) + T log(T/C) K V) per head; the kernels follow the four numbered stages
// of reference/loglinear/attention/chunked_stages.hpp (cuda/src/attention/). Sibling: the CPU
// loglinear::chunked_forward; tests/cuda/ checks one against the other.
/// \file
/// \brief CUDA backend of the chunked form (SPEC.md §5) with the reference's names in namespace loglinear::cuda
/// \ingroup floor_cuda
#pragma once

#include <loglinear/core/inputs.hpp>
#include <loglinear/cuda/device.hpp>
// The options and the state type only: this header pulls in nothing of the CPU forms (no recurrent.hpp).
#include <loglinear/attention/chunked_options.hpp>
#include <loglinear/attention/fenwick_state.hpp>

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

namespace loglinear::cuda {

/// The largest chunk size C the GPU kernels take: their shared-memory tiles are at most 64 x 64.
/// Every GPU model checks its chunk against it before building anything.
inline constexpr Index kMaxGpuChunk = 64;

/// Storage type of q, k, v (and o, dout, dq, dk, dv) on the GPU. g and lambda are float32 in
/// both cases, as are the accumulators and dg, dlam (cuda/src/attention/params.cuh says why).
enum class Precision {
  fp32,  ///< float32 everywhere; FFMA kernels, the exact float32 path (<= 1e-4 vs double)
  bf16,  ///< bfloat16 storage, float32 accumulation; tensor-core (WMMA) kernels (<= 1e-2)
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
/// @throws std::invalid_argument naming the argument, before any launch: the checks of
///         loglinear::chunked_forward (shapes, T >= 1, G dividing H, L >= num_levels(T), finite
///         values, g <= 0, "chunk_size: expected a power of two ..."), then "chunk_size: expected a
///         power of two <= 64 on the GPU", "B*H: expected <= 65535 streams on the GPU", "K, V:
///         expected head dimensions <= 512 on the GPU" and "o: expected shape [B,T,H,V] = ...";
/// @throws std::runtime_error "loglinear::cuda: no CUDA device is available ..." without a GPU,
///         or naming the failing CUDA call and its error string.
template <class Scalar>
void chunked_forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                     TensorView<Scalar, 4> o, Precision precision = Precision::fp32);

/// Chunked forward on the GPU from host buffers that continues a carried Fenwick state and/or
/// returns the state after the call: the CUDA twin of loglinear::chunked_forward(in, opts, o, io).
/// The call's first token is at absolute position t0 = initial->tokens (0 without one), lam needs
/// L >= num_levels(t0 + T), and continuing from a state equals one long call. The kernels start at
/// a chunk boundary of the sequence, so the chunk size used is the largest power of two <= C that
/// divides t0: C for a prefill or chunk-aligned segments, down to 1 for odd t0. A smaller chunk
/// costs time and workspace: the level states grow as T / C' (at C' = 1, the recurrent form's
/// O(T log(t0+T) K V) work and a workspace of up to log T K V floats per token and head), so a long
/// call after an unaligned t0 is best split at the next multiple of C by the caller, as
/// loglinear.torch does (a head of < C tokens, then the aligned rest from the head's state). The state is float32 in both precisions. `initial` and `final` must be different objects.
/// @param in      q, k, v, g, lam on the host, as in chunked_forward (lam: L >= num_levels(t0 + T))
/// @param opts    chunk size, as in chunked_forward
/// @param o       [B,T,H,V] on the host, overwritten
/// @param initial the state after t0 earlier tokens, S [B,H,num_levels(t0),K,V], or nullptr
/// @param final   if not nullptr, receives the state after the call (tokens t0 + T,
///        S [B,H,num_levels(t0+T),K,V])
/// @param precision storage type on the GPU, as in chunked_forward
/// @throws std::invalid_argument as chunked_forward, plus "initial_state.<field>: ..." on a bad
///         state (the CPU's check_initial_state) and "lam: ... L >= num_levels(t0 + T)".
template <class Scalar>
void chunked_forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts, TensorView<Scalar, 4> o,
                     const FenwickState<Scalar>* initial, FenwickState<Scalar>* final,
                     Precision precision = Precision::fp32);

/// Chunked backward on the GPU from host buffers; overwrites `grads` (dq, dk summed over the
/// heads of each group). Same contract as loglinear::chunked_backward; `precision` as in
/// chunked_forward (bf16 also rounds dout on upload and dq, dk, dv on the way back).
/// @param in    q, k, v, g, lam on the host, as in chunked_forward
/// @param opts  chunk size, as in chunked_forward
/// @param dout  [B,T,H,V] gradient of the loss w.r.t. o, finite
/// @param grads dq, dk [B,T,G,K], dv [B,T,H,V], dg [B,T,H], dlam [B,T,H,L] on the host, overwritten
/// @param precision storage type on the GPU, as in chunked_forward
/// @throws std::invalid_argument as chunked_forward, plus "dout: expected shape [B,T,H,V] = ...",
///         non-finite dout and gradient shapes (the checks of loglinear::chunked_backward);
/// @throws std::runtime_error as chunked_forward.
template <class Scalar>
void chunked_backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                      Precision precision = Precision::fp32);

/// Chunked backward with a carried state on the GPU from host buffers: the CUDA twin of
/// loglinear::chunked_backward(in, opts, dout, grads, io, d_final, d_initial). Chunk size as in the
/// stateful chunked_forward.
/// @param in        q, k, v, g, lam on the host, as in the stateful chunked_forward
/// @param opts      chunk size
/// @param dout      [B,T,H,V] gradient of the loss w.r.t. o, finite
/// @param grads     dq, dk [B,T,G,K], dv [B,T,H,V], dg [B,T,H], dlam [B,T,H,L] on the host, overwritten
/// @param initial   the state the forward continued from, or nullptr
/// @param d_final   gradient arriving at the final state [B,H,num_levels(t0+T),K,V], or nullptr (zero)
/// @param d_initial if not nullptr, receives the gradient w.r.t. initial->S, [B,H,num_levels(t0),K,V]
/// @param precision storage type on the GPU, as in chunked_forward
/// @throws std::invalid_argument as chunked_backward, plus the state checks of the CPU's
///         check_backward_arguments ("initial_state.<field>", "d_final: expected shape ...").
template <class Scalar>
void chunked_backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                      const FenwickState<Scalar>* initial, const Tensor<Scalar, 5>* d_final,
                      Tensor<Scalar, 5>* d_initial, Precision precision = Precision::fp32);

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
  float* dlam = nullptr;  ///< [B,T,H,L]; levels >= num_levels(t0 + T) get zero
};

/// The carried Fenwick state of a chunked call on device buffers (float32, SPEC.md §4 layout,
/// the CPU's FenwickState::S): every row continues from AttentionDims::t0 earlier tokens.
struct DeviceState {
  const float* initial = nullptr;  ///< [B,H,num_levels(t0),K,V]; required iff dims.t0 > 0
  float* final = nullptr;          ///< [B,H,num_levels(t0+T),K,V], overwritten; nullptr: not wanted
};

/// The gradients of a DeviceState in a backward call.
struct DeviceStateGrads {
  const float* d_final = nullptr;  ///< [B,H,num_levels(t0+T),K,V] gradient at the final state; nullptr: zero
  float* d_initial = nullptr;      ///< [B,H,num_levels(t0),K,V], overwritten; nullptr: not wanted
};

/// Bytes of device workspace one chunked_forward_device (backward = false) or
/// chunked_backward_device (backward = true) call needs for these sizes and storage type: the
/// chunk-local cumulative decay, the chunk summaries and level states (float32), their gradient,
/// and float32 accumulators of o / dq, dk, dv when the storage type is bf16.
/// About 4 (E + 1) B H (T/C) K V bytes forward and 4 (E + 2) B H (T/C) K V backward, E =
/// num_levels(t0 + T) - log2(C) - 1 chunk levels (at most), plus the float32 accumulators for bf16,
/// 8 B H T bytes of decay sums (every call: the size does not depend on whether a state is passed)
/// and, backward, the final state (4 B H Lf K V bytes).
/// @param d         sizes B, T, H, G, K, V, L and t0 (tokens before the call; C as the stateful
///                  chunked_forward picks it)
/// @param opts      chunk size C
/// @param precision storage type of q, k, v
/// @param backward  true for chunked_backward_device (adds the summaries' gradient)
/// @throws std::invalid_argument on the size checks of chunked_forward_device ("dims.T: expected
///         >= 1, got 0", "dims.G: expected a divisor of H = ...", "dims.L: expected >=
///         num_levels(t0 + T) = ...", "dims.t0: ...", chunk size and GPU limits).
std::size_t chunked_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts, Precision precision,
                                    bool backward);

/// Chunked forward on device buffers, asynchronous on `stream` (no host synchronisation).
/// Sizes, chunk size, pointers and the workspace size are checked before launch; the values on
/// the device are not inspected (the host-buffer overload checks them).
/// @param d sizes B, T, H, G, K, V, L (L >= num_levels(t0 + T)) and t0, which must be 0 in this
///        stateless overload (a call after t0 tokens needs the carried state: the overload below)
/// @param o [B,T,H,V], overwritten
/// @param in device pointers of q, k, v (storage In), g and lam (float32)
/// @param opts chunk size C: a power of two <= 64 (see chunked_forward)
/// @param workspace device memory of at least chunked_workspace_bytes(d, opts, In's precision, false),
///        256-byte aligned (as cudaMalloc returns)
/// @param workspace_bytes size of `workspace` in bytes (checked against what the call needs)
/// @param stream CUDA stream the kernels are queued on (nullptr: the default stream)
/// @throws std::invalid_argument naming the bad argument: the size checks of
///         chunked_workspace_bytes, "in.q: expected a device pointer, got nullptr" (likewise in.k,
///         in.v, in.g, in.lam, o), "workspace_bytes: expected >= chunked_workspace_bytes(...) = N,
///         got M", "workspace: expected a 256-byte aligned device pointer ...";
/// @throws std::runtime_error without a device or on a CUDA error, naming the call.
template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream = nullptr);

/// Chunked backward on device buffers, asynchronous on `stream`; overwrites every gradient.
/// Same checks and workspace contract as chunked_forward_device (with backward = true).
/// @param in    device pointers of q, k, v (storage In), g and lam (float32)
/// @param d     sizes, as in chunked_forward_device
/// @param opts  chunk size C
/// @param dout  [B,T,H,V] gradient w.r.t. o, storage In
/// @param grads device pointers of dq, dk, dv (storage In), dg, dlam (float32), overwritten
/// @param workspace at least chunked_workspace_bytes(d, opts, In's precision, true), 256-byte aligned
/// @param workspace_bytes size of `workspace` in bytes
/// @param stream CUDA stream the kernels are queued on
/// @throws std::invalid_argument as chunked_forward_device, naming dout or grads.dq ... grads.dlam
///         for a null pointer; std::runtime_error as chunked_forward_device.
template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream = nullptr);

/// Chunked forward on device buffers that continues a carried state (dims.t0 tokens before the
/// call) and/or writes the state after it; otherwise as chunked_forward_device. The workspace is
/// chunked_workspace_bytes(d, ...) with the same d (its t0 included).
/// @param in    device pointers of q, k, v (storage In), g and lam (float32)
/// @param d     sizes B, T, H, G, K, V, L (L >= num_levels(t0 + T)) and t0, the tokens before the call
/// @param opts  chunk size C (the kernels use the largest power of two <= C dividing t0)
/// @param o     [B,T,H,V], overwritten
/// @param workspace at least chunked_workspace_bytes(d, opts, In's precision, false), 256-byte aligned
/// @param workspace_bytes size of `workspace` in bytes
/// @param stream CUDA stream the kernels are queued on
/// @param state initial state (required iff d.t0 > 0) and where to write the final one (or nullptr)
/// @throws std::invalid_argument as chunked_forward_device, plus "dims.t0: ...", "state.initial:
///         expected a device pointer ... when dims.t0 = N > 0, got nullptr" (and the converse).
template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream,
                            const DeviceState& state);

/// Chunked backward on device buffers with a carried state: adds the state's terms to every input
/// gradient and writes the initial state's gradient; otherwise as chunked_backward_device.
/// @param in          device pointers of q, k, v (storage In), g and lam (float32)
/// @param d           sizes and t0, as in the stateful chunked_forward_device
/// @param opts        chunk size C
/// @param dout        [B,T,H,V] gradient w.r.t. o, storage In
/// @param grads       device pointers of dq, dk, dv (storage In), dg, dlam (float32), overwritten
/// @param workspace   at least chunked_workspace_bytes(d, opts, In's precision, true), 256-byte aligned
/// @param workspace_bytes size of `workspace` in bytes
/// @param stream      CUDA stream the kernels are queued on
/// @param state       the initial state of the forward (state.final is ignored)
/// @param state_grads d_final (or nullptr: zero) and where to write d_initial (or nullptr)
template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream, const DeviceState& state,
                             const DeviceStateGrads& state_grads);

/// \name Packed sequences (cu_seqlens)
/// The twins of loglinear::forward_varlen / backward_varlen with Form::chunked, without a carried
/// initial state (the forward may return the final ones): S sequences packed along T (B = 1,
/// FlashAttention's convention, cu_seqlens [S+1] with 0 = cu[0] < ... < cu[S] = T), each its own
/// Fenwick tree, chunks aligned to every sequence start
/// (a chunk never crosses a sequence boundary: the CPU form says why). One launch sequence for all
/// sequences: the kernels' grid has the longest sequence's ceil(max n_i / C) chunk slots per
/// sequence and head, and the slots past a shorter sequence's end return at once; the workspace
/// holds S x that many chunk states (chunked_varlen_workspace_bytes), so a batch of very uneven
/// lengths is cheaper as one stateful call per sequence (loglinear.torch picks). The offsets are
/// host memory (checked there, and they size the grid); the kernels read a device copy: the
/// caller's `cu_seqlens_device` if given, else one the call copies into the workspace on `stream`
/// (from pageable memory, a copy CUDA may make wait for the stream's earlier work).
/// @{

/// Workspace bytes of a packed forward (backward = false) or backward call.
/// @param d          sizes of the packed arrays: B = 1, T = cu_seqlens[S], H, G, K, V, L (>=
///                   num_levels(longest sequence)); t0 = 0
/// @param opts       chunk size C (a power of two <= 64)
/// @param cu_seqlens [S+1] int64 offsets on the host
/// @param precision  storage type of q, k, v
/// @param backward   true for chunked_backward_varlen_device
/// @throws std::invalid_argument as loglinear::check_varlen ("cu_seqlens: ...", "q: expected B =
///         1 ...", "lam: expected L >= num_levels(...)"), "dims.<X>: ..." as chunked_workspace_bytes,
///         "dims.t0: expected 0 with cu_seqlens ..." and the GPU limits for S sequences.
std::size_t chunked_varlen_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts,
                                           ConstTensorView<Index, 1> cu_seqlens, Precision precision, bool backward);

/// Packed forward on device buffers, queued on `stream`: o of every sequence equals a separate
/// chunked_forward_device call on its rows.
/// @param in          device pointers of q, k [1,T,G,K], v [1,T,H,V] (storage In), g [1,T,H], lam [1,T,H,L]
/// @param d           sizes of the packed arrays, as chunked_varlen_workspace_bytes
/// @param cu_seqlens  [S+1] int64 offsets on the host
/// @param opts        chunk size C
/// @param o           [1,T,H,V] device pointer (storage In), overwritten
/// @param workspace   at least chunked_varlen_workspace_bytes(..., false) bytes, 256-byte aligned
/// @param workspace_bytes size of `workspace` in bytes
/// @param stream      CUDA stream the copy and the kernels are queued on
/// @param cu_seqlens_device the same S+1 offsets in device memory (int64), or nullptr: the call
///        then copies the host offsets into the workspace
/// @param final_states [S,H,Lf,K,V] float32 device buffer, Lf = num_levels(longest sequence), or
///        nullptr: every sequence's level states after its last token (what a decoding loop
///        continues from, e.g. loglinear.torch's decode_step on a ragged batch), levels above a
///        sequence's own num_levels(n_i) written as zero. Forward only: the packed backward takes
///        no gradient of them (continue each sequence with a stateful call for that).
/// @throws std::invalid_argument as chunked_varlen_workspace_bytes, plus the pointer and workspace
///         checks of chunked_forward_device; std::runtime_error without a device.
template <class In>
void chunked_forward_varlen_device(const DeviceInputs<In>& in, const AttentionDims& d,
                                   ConstTensorView<Index, 1> cu_seqlens, const ChunkedOptions& opts, In* o,
                                   void* workspace, std::size_t workspace_bytes, cudaStream_t stream = nullptr,
                                   const Index* cu_seqlens_device = nullptr, float* final_states = nullptr);

/// Packed backward on device buffers: every gradient equals a separate chunked_backward_device
/// call per sequence (dg is 0 at every sequence's first token).
/// @param in          the forward's inputs, as chunked_forward_varlen_device
/// @param d           sizes of the packed arrays
/// @param cu_seqlens  the forward's [S+1] offsets on the host
/// @param opts        the forward's chunk size
/// @param dout        [1,T,H,V] gradient w.r.t. o (storage In)
/// @param grads       dq, dk, dv (storage In), dg, dlam (float32) device pointers, overwritten
/// @param workspace   at least chunked_varlen_workspace_bytes(..., true) bytes, 256-byte aligned
/// @param workspace_bytes size of `workspace` in bytes
/// @param stream      CUDA stream the copy and the kernels are queued on
/// @param cu_seqlens_device the offsets in device memory, or nullptr, as chunked_forward_varlen_device
/// @throws as chunked_forward_varlen_device, for dout and the gradients' pointers too.
template <class In>
void chunked_backward_varlen_device(const DeviceInputs<In>& in, const AttentionDims& d,
                                    ConstTensorView<Index, 1> cu_seqlens, const ChunkedOptions& opts, const In* dout,
                                    const DeviceGrads<In>& grads, void* workspace, std::size_t workspace_bytes,
                                    cudaStream_t stream = nullptr, const Index* cu_seqlens_device = nullptr);

/// Packed forward from host buffers (float32 on the host; `precision` as chunked_forward).
/// @param in          packed inputs on the host, checked as loglinear::forward_varlen does
/// @param cu_seqlens  [S+1] int64 offsets
/// @param opts        chunk size C (<= 64 on the GPU)
/// @param o           [1,T,H,V] on the host, overwritten
/// @param precision   storage type on the GPU
/// @param final       if not nullptr, replaced by S states, each sequence's after its last token
///                    ([1,H,num_levels(n_i),K,V], tokens n_i: loglinear::VarlenStateIO's layout)
/// @throws std::invalid_argument naming the argument (check_varlen, every sequence's values, o's
///         shape); std::runtime_error without a device.
template <class Scalar>
void chunked_forward_varlen(const AttentionInputs<Scalar>& in, ConstTensorView<Index, 1> cu_seqlens,
                            const ChunkedOptions& opts, TensorView<Scalar, 4> o, Precision precision = Precision::fp32,
                            std::vector<FenwickState<Scalar>>* final = nullptr);

/// Packed backward from host buffers; overwrites `grads`.
/// @param in          the forward's packed inputs on the host
/// @param cu_seqlens  the forward's offsets
/// @param opts        the forward's chunk size
/// @param dout        [1,T,H,V] gradient w.r.t. o
/// @param grads       dq, dk [1,T,G,K]; dv [1,T,H,V]; dg [1,T,H]; dlam [1,T,H,L] on the host
/// @param precision   storage type on the GPU
/// @throws as chunked_forward_varlen, and on a wrong dout or gradient shape.
template <class Scalar>
void chunked_backward_varlen(const AttentionInputs<Scalar>& in, ConstTensorView<Index, 1> cu_seqlens,
                             const ChunkedOptions& opts, ConstTensorView<Scalar, 4> dout,
                             const AttentionGrads<Scalar>& grads, Precision precision = Precision::fp32);
/// @}

}  // namespace loglinear::cuda
