// One recurrent decoding step on the GPU for B x H streams (SPEC.md §4), the twin of the CPU
// loglinear::Decoder (reference/loglinear/attention/decoder.hpp): O(L K V) per stream and token.
// From host buffers (the state is copied both ways per token) or on device buffers, where the
// state stays on the GPU between tokens. Its kernels are in cuda/src/attention/decoder_step.cu.
/// \file
/// \brief One recurrent decoding step on the GPU for B x H streams (SPEC.md §4), the twin of the CPU loglinear::Decoder ...
/// \ingroup floor_cuda
#pragma once

#include <loglinear/core/tensor.hpp>
#include <loglinear/cuda/device.hpp>

#include <cuda_runtime_api.h>

#include <cstdint>

namespace loglinear::cuda {

/// One recurrent decoding step for B x H streams on the GPU (SPEC.md §4), in place on `state`:
/// the level states cascade and decay by exp(g_t), the new token enters level 0, then
/// o_t = sum_l lam_t[l] S_l^T q_t.
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
/// @throws std::invalid_argument naming the argument: "tokens: expected >= 0, got ...",
///         "state: expected [B,H,Lmax,K,V] with Lmax >= num_levels(...) = ..., got Lmax = ...",
///         "q_t: expected G dividing H = ...", "lam_t: expected [B,H,L] with L >= ...", a shape
///         of q_t, k_t, v_t, g_t, o_t that does not match, "g_t: expected finite log-decay values
///         <= 0 ..." and the GPU limits of chunked_forward;
/// @throws std::runtime_error without a device or on a CUDA error, naming the call.
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
/// @param stream CUDA stream the kernel is queued on
/// @throws std::invalid_argument naming the bad argument (the size checks of decode_step, and
///         "q_t: expected a device pointer, got nullptr" likewise for every pointer);
///         std::runtime_error without a device or on a CUDA error.
void decode_step_device(const DecodeDims& d, float* state, Index tokens, const float* q_t, const float* k_t,
                        const float* v_t, const float* g_t, const float* lam_t, float* o_t,
                        cudaStream_t stream = nullptr);

/// decode_step_device for a ragged batch: streams at different positions, each with its own
/// token count (e.g. after a packed prefill of prompts of different lengths), in one launch.
/// Stream b consumes token number stream_tokens[b]; its levels from num_levels(stream_tokens[b] +
/// 1) up to num_levels(max_tokens + 1) are padding and are written as zeros (levels above those,
/// up to Lmax, are not touched), and the levels it did not hold before the step are read as zero.
/// Everything else as decode_step_device, whose checks take `max_tokens` as the count (so Lmax,
/// L >= num_levels(max_tokens + 1)).
/// @param d             sizes of the streams
/// @param state         [B,H,Lmax,K,V] level states, stream b after stream_tokens[b] tokens,
///                      updated in place
/// @param max_tokens    the largest of the B counts (the host knows it; the checks and the
///                      levels use it)
/// @param stream_tokens device pointer to B int64 counts, each in [0, max_tokens]. The values are
///                      read by the kernel, not on the host: a count outside that range makes the
///                      stream's o_t NaN and leaves its state unchanged (never a read or write
///                      outside the state); the caller checks the counts where it holds them
///                      (loglinear.torch does, on the host copy it already has).
/// @param q_t    [B,G,K] query of the new token
/// @param k_t    [B,G,K] key of the new token
/// @param v_t    [B,H,V] value of the new token
/// @param g_t    [B,H] log-decay of the new token (<= 0)
/// @param lam_t  [B,H,L] level weights of the new token
/// @param o_t    [B,H,V] output, overwritten
/// @param stream CUDA stream the kernel is queued on
/// @param padding_is_zero true if the caller keeps every level above each stream's live ones at
///        zero (a state buffer kept in place across steps, zero-initialised): those levels are
///        then not written, so a step moves only the live levels' bytes. max_tokens may then be
///        the largest count the Lmax levels hold (2^(Lmax-1) - 1) rather than the actual largest,
///        so that the host needs no count at all (loglinear.torch.Decoder: no synchronisation per
///        token, a step a CUDA graph can capture).
/// @throws std::invalid_argument as decode_step_device (with max_tokens as its tokens), and
///         "stream_tokens: expected a device pointer to B token counts, got nullptr";
///         std::runtime_error without a device or on a CUDA error.
void decode_step_device_ragged(const DecodeDims& d, float* state, Index max_tokens, const std::int64_t* stream_tokens,
                               const float* q_t, const float* k_t, const float* v_t, const float* g_t,
                               const float* lam_t, float* o_t, cudaStream_t stream = nullptr,
                               bool padding_is_zero = false);

}  // namespace loglinear::cuda
