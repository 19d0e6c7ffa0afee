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

}  // namespace loglinear::cuda
