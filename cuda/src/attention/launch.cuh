// The launchers of the kernels, by stage (stage numbers of
// reference/loglinear/attention/chunked_stages.hpp, SPEC.md §5). Host functions rather than shared
// kernel templates: a __global__ template launched from another translation unit would need
// relocatable device code. chunked_launch.cu strings them together; each file named below
// defines its own. Every launcher queues work on `stream` and returns without synchronising.
#pragma once

#include "params.cuh"

namespace loglinear::cuda {

// ---- the whole call, in stage order (chunked_launch.cu) ----------------------------------------
/// Forward: gamma, then stages 1-4 (tensor cores for bf16 sizes tensor_core_supported accepts).
/// Writes p.o (float32). Instantiated for In = float and __nv_bfloat16.
template <class In> void launch_chunked_forward(const ChunkedParams<In>& p, cudaStream_t stream);
/// Backward: gamma, the forward's stages 2-3 again, the backward stages, then dg. Expects dq, dk,
/// dv, dlam and dU zeroed; writes every gradient.
template <class In> void launch_chunked_backward(const ChunkedParams<In>& p, cudaStream_t stream);

// ---- FFMA forward (chunked_fwd_ffma.cu): float32 arithmetic on any storage type -------------
/// gamma: chunk-local inclusive cumsum of g (the CPU's chunk_local_cumsum).
template <class In> void launch_fwd_local_cumsum(const ChunkedParams<In>& p, cudaStream_t stream);
/// Stage 2: chunk summaries U.
template <class In> void launch_fwd_stage2_summaries(const ChunkedParams<In>& p, cudaStream_t stream);
/// Stage 3: level states Hin entering every chunk (also used by the tensor-core paths).
template <class In> void launch_fwd_stage3_level_states(const ChunkedParams<In>& p, cudaStream_t stream);
/// Stages 1-4 after gamma.
template <class In> void launch_chunked_forward_ffma(const ChunkedParams<In>& p, cudaStream_t stream);

// ---- tensor-core forward (chunked_fwd_tc.cu): bf16 operands, float32 accumulation -----------
/// True if the tensor-core kernels (both directions) handle these sizes: K and V multiples of 16
/// up to 128 and 16 <= C <= 64.
bool tensor_core_supported(int K, int V, int C);
/// Stage 2 on tensor cores.
void launch_fwd_stage2_summaries_tc(const ChunkedParams<__nv_bfloat16>& p, cudaStream_t stream);
/// Stages 2, 3 and the fused 1 + 4 after gamma.
void launch_chunked_forward_tc(const ChunkedParams<__nv_bfloat16>& p, cudaStream_t stream);

// ---- backward (chunked_bwd_ffma.cu, chunked_bwd_tc.cu) ------------------------------------------
/// Stages 1, 3, 4 and 2 backward after gamma, FFMA (replays the forward's stages 2-3 itself).
template <class In> void launch_chunked_backward_ffma(const ChunkedParams<In>& p, cudaStream_t stream);
/// The same on tensor cores, for the sizes tensor_core_supported accepts.
void launch_chunked_backward_tc(const ChunkedParams<__nv_bfloat16>& p, cudaStream_t stream);
/// dg from eq. 10 of docs/backward.md (the CPU's decay_gradient); needs complete dlam and dv.
template <class In> void launch_bwd_decay_gradient(const ChunkedParams<In>& p, cudaStream_t stream);
// The carried state's kernels (chunked_state.cu): the forward's terms of S0 and the final state
// (into p.S_final if not null); the backward's terms into dq, dk, dv, dlam, dS0 and dG_last.
template <class In> void launch_state_forward(const ChunkedParams<In>& p, cudaStream_t stream);
template <class In> void launch_state_backward(const ChunkedParams<In>& p, cudaStream_t stream);

// ---- decoding (decoder_step.cu) -----------------------------------------------------------------
/// One decoding step: cascade + decay + insert and the read, fused in one kernel (v2).
void launch_decode_step(const DecodeParams& p, cudaStream_t stream);
/// The same as two kernels, update then read (v1), kept for bench/gpu/bench_decode.cu.
void launch_decode_step_v1(const DecodeParams& p, cudaStream_t stream);

}  // namespace loglinear::cuda
