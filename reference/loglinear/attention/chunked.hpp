// Chunked form of log-linear attention, O(T C (K+V) + T log(T/C) K V) per head (SPEC.md §5):
// dense diagonal blocks plus one linear-attention scan per chunk level. The definition it must
// match is naive.hpp; its stages (chunked_stages.hpp) are mirrored by the CUDA kernels.
/// \file
/// \brief Chunked form of log-linear attention, O(T C (K+V) + T log(T/C) K V) per head (SPEC.md §5)
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/chunked_options.hpp>
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/inputs.hpp>

namespace loglinear {

/// Chunked forward (SPEC.md §5, stages 1-4), OpenMP over batch x groups.
///
/// @param in     q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); lam [B,T,H,L]
/// @param opts   chunk size C (power of two, default 64); T need not be a multiple of C, and a
///               C above t0 + T is clamped to the smallest power of two >= t0 + T (ChunkedOptions)
/// @param o      output [B,T,H,V], overwritten
/// @param state  optional initial / final Fenwick state (as recurrent_forward); the initial
///               state may end at any position, aligned to C or not
/// @throws std::invalid_argument on bad shapes, values or chunk size, or work arrays that
///         cannot fit in memory (checked before any allocation).
template <class Scalar>
void chunked_forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                     TensorView<Scalar, 4> o, const StateIO<Scalar>& state = {});

/// Chunked backward (SPEC.md §5.2, docs/backward.md §3): overwrites `grads`; keeps the
/// O(T C (K+V) + T log(T/C) K V) cost. Recomputes the per-level chunk states Hin level by level
/// (O(N K V) memory per head in flight, N = number of chunks), nothing is cached by the forward.
/// `d_final` / `d_initial` as in recurrent_backward. The chunk size is validated and clamped as
/// in chunked_forward.
template <class Scalar>
void chunked_backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                      const StateIO<Scalar>& state = {},
                      const Tensor<Scalar, 5>* d_final = nullptr,
                      Tensor<Scalar, 5>* d_initial = nullptr);

}  // namespace loglinear
