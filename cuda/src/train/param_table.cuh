// The device-side table of a parameter list that the multi-tensor kernels of train/ (clip, AdamW)
// walk: one launch covers every parameter, grid.y = parameter, grid.x = fixed slices of it.
#pragma once

#include <loglinear/cuda/core/param.hpp>

#include "../core/launch.cuh"

#include <cstdint>
#include <vector>

namespace loglinear::cuda::train {

/// One parameter as the kernels see it.
struct ParamSlot {
  float* value;
  float* grad;
  float* m;   // first moment (AdamW only)
  float* v;   // second moment (AdamW only)
  std::int64_t n;
  int weight_decay;
};

/// Blocks per parameter of the multi-tensor kernels (grid.x): the slices are fixed by this number
/// and the parameter's size alone, so every reduction over them has a fixed order.
constexpr int kSlices = 16;

/// Uploads the table for `params` (moments: nullptr or one device pointer pair per parameter).
inline void upload_table(DeviceBuffer<ParamSlot>& table, const std::vector<DeviceParam*>& params,
                         const std::vector<float*>& m, const std::vector<float*>& v, cudaStream_t stream) {
  std::vector<ParamSlot> host;
  for (size_t i = 0; i < params.size(); ++i)
    host.push_back({params[i]->value.data(), params[i]->grad.data(), m.empty() ? nullptr : m[i],
                    v.empty() ? nullptr : v[i], params[i]->value.size(), params[i]->weight_decay ? 1 : 0});
  table.resize(host.size());
  table.upload(host.data(), stream);
  LOGLINEAR_CUDA_CHECK(cudaStreamSynchronize(stream));  // `host` dies here
}

}  // namespace loglinear::cuda::train
