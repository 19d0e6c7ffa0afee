// Argument checks of the CUDA entry points (chunked_api.cu, decoder_api.cu): each public call
// validates here, once, before anything is allocated or queued, and gets back the sizes its
// params struct is filled with. The CPU's checks (reference/loglinear/core/checks.hpp) for the
// tensors, plus the limits of the GPU launch configuration. Cost: one pass over host inputs
// (finite values, g <= 0), O(1) for device pointers. Every message names the argument, what was
// expected and what was given.
#pragma once

#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/decoder.hpp>

#include "params.cuh"

#include <cstddef>

namespace loglinear::cuda {

/// Throws std::runtime_error if no CUDA device is usable. Called after the argument checks, so
/// that a bad argument is reported the same way with and without a GPU.
void require_device();

/// Sizes of a chunked forward on host buffers: loglinear::check_inputs, the chunk size and the
/// GPU limits, then o's shape [B,T,H,V].
/// With a carried state: `initial` (or nullptr) is checked first and sets t0, and `final` (if not
/// nullptr) is shaped [B,H,num_levels(t0+T),K,V], as the CPU forms do.
ChunkedSizes check_chunked_forward(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                                   const Shape<4>& o_shape, const FenwickState<float>* initial = nullptr,
                                   FenwickState<float>* final = nullptr);

/// As check_chunked_forward for the backward: dout's shape and values, then the gradients' shapes.
/// With a carried state: the CPU's check_backward_arguments (initial state, inputs, dout, the
/// gradients' shapes, d_final [B,H,num_levels(t0+T),K,V]).
ChunkedSizes check_chunked_backward(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                                    ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads,
                                    const FenwickState<float>* initial = nullptr,
                                    const Tensor<float, 5>* d_final = nullptr);

/// Sizes of a chunked call on device buffers: the rules of check_inputs on the sizes alone
/// (messages "dims.<X>: ..."; L >= num_levels(t0 + T)), the chunk size and the GPU limits.
ChunkedSizes check_chunked_dims(const AttentionDims& d, const ChunkedOptions& opts);

/// Sizes of a packed (cu_seqlens) call on device buffers: dims of the packed arrays (B = 1,
/// T = cu[S], t0 = 0), the CPU's check_varlen on the shapes and offsets, the chunk size and the
/// GPU limits; B becomes the sequence count S and T the longest sequence (ChunkedSizes::varlen).
ChunkedSizes check_chunked_varlen(const AttentionDims& d, const ChunkedOptions& opts, ConstTensorView<Index, 1> cu);

/// The same on host tensors, with every sequence's values through the CPU's input checks.
ChunkedSizes check_chunked_varlen_host(const AttentionInputs<float>& in, ConstTensorView<Index, 1> cu,
                                       const ChunkedOptions& opts);

/// Throws "<name>: expected a device pointer, got nullptr".
void check_pointer(const void* ptr, const char* name);

/// check_pointer on every input ("in.q", ..., "in.lam").
template <class In>
void check_pointers(const DeviceInputs<In>& in);

/// check_pointer on every gradient ("grads.dq", ..., "grads.dlam").
template <class In>
void check_pointers(const DeviceGrads<In>& grads);

/// A device call's state pointers against its sizes: state.initial is given iff dims.t0 > 0.
void check_state_pointers(const ChunkedSizes& s, const DeviceState& state);

/// Throws unless `workspace` is a 256-byte aligned pointer to at least `need` bytes.
void check_workspace(std::size_t need, const void* workspace, std::size_t workspace_bytes);

/// Sizes of a decoding step on device buffers, with t and levels = num_levels(tokens + 1) set
/// and every pointer null.
DecodeParams check_decode_dims(const DecodeDims& d, Index tokens);

/// As check_decode_dims, with the sizes read off host views, their shapes and g_t's values.
DecodeParams check_decode_step(ConstTensorView<float, 5> state, Index tokens, ConstTensorView<float, 3> q_t,
                               ConstTensorView<float, 3> k_t, ConstTensorView<float, 3> v_t,
                               ConstTensorView<float, 2> g_t, ConstTensorView<float, 3> lam_t,
                               ConstTensorView<float, 3> o_t);

}  // namespace loglinear::cuda
