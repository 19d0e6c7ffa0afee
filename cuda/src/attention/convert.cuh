// Device conversions between float32 and bf16 storage, queued on a stream: the last step of a
// bf16 operator call (float32 accumulators to the caller's bf16) and, in the GPU models' bf16
// attention (cuda/src/nn/attention.cu), the copies around it. Kept apart from buffers.cuh so that
// code with the core DeviceBuffer can include it. O(n); implemented in buffers.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

namespace loglinear::cuda {

/// out[i] = bf16(in[i]) (round to nearest) for i < n, queued on `stream`.
void convert_to_bf16(const float* in, __nv_bfloat16* out, long n, cudaStream_t stream);

/// out[i] = float(in[i]) (exact) for i < n, queued on `stream`.
void convert_to_float(const __nv_bfloat16* in, float* out, long n, cudaStream_t stream);

}  // namespace loglinear::cuda
