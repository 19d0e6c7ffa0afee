// CUDA backend of the chunked form (SPEC.md §5) and of one recurrent decoding step, float32,
// with the reference's names in namespace loglinear::cuda. The kernels mirror the four numbered
// stages of reference/loglinear/attention/chunked_stages.cpp (cuda/src/chunked_fwd.cu,
// chunked_bwd.cu); tests/cuda/ checks them against the double CPU reference.
#pragma once

#include <loglinear/attention/chunked.hpp>

namespace loglinear::cuda {

/// True if a CUDA device is usable (false, without throwing, when there is no GPU or driver).
bool device_available();

/// Name of device 0 and its compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
/// @throws std::runtime_error if no device is available.
std::string device_name();

/// Chunked forward on the GPU from host buffers: copies the inputs in, runs stages 1-4, copies o
/// back. Same layout, validation and result as loglinear::chunked_forward (to float rounding).
/// @param opts chunk size C: 16, 32 or 64 on the GPU (it bounds the shared-memory tiles).
/// @throws std::invalid_argument on bad shapes or values (before any launch);
/// @throws std::runtime_error naming the failing CUDA call and its error string.
template <class Scalar>
void chunked_forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                     TensorView<Scalar, 4> o);

/// Chunked backward on the GPU from host buffers; overwrites `grads` (dq, dk summed over the
/// heads of each group). Same contract as loglinear::chunked_backward.
template <class Scalar>
void chunked_backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads);

/// One recurrent decoding step for B x H streams on the GPU (SPEC.md §4), in place on `state`.
///
/// @param state  [B,H,Lmax,K,V] level states after `tokens` tokens (zero-initialised at 0)
/// @param tokens tokens consumed so far (the step consumes token number `tokens`);
///               Lmax >= num_levels(tokens + 1) is required
/// @param q_t, k_t [B,G,K]; v_t [B,H,V]; g_t [B,H] (<= 0); lam_t [B,H,L], L >= num_levels(tokens+1)
/// @param o_t    [B,H,V], overwritten
/// Host buffers in, host buffers out (the state is copied both ways).
template <class Scalar>
void decode_step(TensorView<Scalar, 5> state, Index tokens, ConstTensorView<Scalar, 3> q_t,
                 ConstTensorView<Scalar, 3> k_t, ConstTensorView<Scalar, 3> v_t,
                 ConstTensorView<Scalar, 2> g_t, ConstTensorView<Scalar, 3> lam_t,
                 TensorView<Scalar, 3> o_t);

}  // namespace loglinear::cuda
