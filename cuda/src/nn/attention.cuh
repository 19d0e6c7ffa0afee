// The attention operator as the GPU models call it (task_model.cu, mamba2_mixer.cu): one forward
// and one backward on float32 device matrices, in the storage precision the model was given.
// Precision::fp32 calls the FFMA kernels on the matrices themselves (the CPU twin's arithmetic, to
// float rounding). Precision::bf16 rounds q, k, v (and dout) to bfloat16 copies, runs the
// tensor-core kernels, and widens o (and dq, dk, dv) back to float32: the operator's error becomes
// the bf16 rounding of its inputs (<= 1e-2 normwise, cuda/chunked.hpp), an opt-in for speed
// (loglinear-train --attention bf16). The copies and the workspace live in Context::scratch.
// Cost: the operator's, plus O(N (G K + H V)) conversions in bf16 mode.
#pragma once

#include <loglinear/core/inputs.hpp>
#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/context.hpp>

namespace loglinear::cuda::nn {

/// o = LogLinearAttention(in) [B,T,H,V] on ctx's stream, q, k, v, o float32 on the device.
void attention_forward(Context& ctx, Precision precision, const DeviceInputs<float>& in, const AttentionDims& dims,
                       const ChunkedOptions& opts, float* o);

/// Overwrites grads (float32) with the operator's gradients for dout [B,T,H,V] on ctx's stream.
void attention_backward(Context& ctx, Precision precision, const DeviceInputs<float>& in, const AttentionDims& dims,
                        const ChunkedOptions& opts, const float* dout, const DeviceGrads<float>& grads);

/// The name of a Precision ("fp32", "bf16").
const char* precision_name(Precision p);
/// The Precision of a name. @throws std::invalid_argument "attention: expected fp32 or bf16, got ...".
Precision precision_from_name(const std::string& name);

}  // namespace loglinear::cuda::nn
