// Upload, download and the bf16 conversion kernel of buffers.cuh. Rounding on the host keeps
// one copy per input (no float32 staging on the device); the device conversion is for outputs,
// which the kernels accumulate in float32 whatever the storage type. O(elements).
#include "buffers.cuh"

#include <algorithm>
#include <type_traits>
#include <vector>

namespace loglinear::cuda {

namespace {
using bf16 = __nv_bfloat16;

// One thread per element, grid-stride so that the grid stays at most 4096 blocks.
__global__ void convert_float_to_bf16(const float* in, bf16* out, long n) {
  for (long i = blockIdx.x * long(blockDim.x) + threadIdx.x; i < n; i += long(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

__global__ void convert_bf16_to_float(const bf16* in, float* out, long n) {
  for (long i = blockIdx.x * long(blockDim.x) + threadIdx.x; i < n; i += long(gridDim.x) * blockDim.x)
    out[i] = __bfloat162float(in[i]);
}
}  // namespace

template <class In>
DeviceBuffer<In> upload(const float* host, std::size_t n) {
  if constexpr (std::is_same_v<In, bf16>) {
    std::vector<bf16> rounded(n);
    for (std::size_t i = 0; i < n; ++i) rounded[i] = __float2bfloat16(host[i]);
    return DeviceBuffer<bf16>(rounded.data(), n);
  } else {
    return DeviceBuffer<float>(host, n);
  }
}

template <class In>
void download(const DeviceBuffer<In>& buffer, float* host) {
  if constexpr (std::is_same_v<In, bf16>) {
    std::vector<bf16> rounded(buffer.size());
    buffer.to_host(rounded.data());
    for (std::size_t i = 0; i < rounded.size(); ++i) host[i] = __bfloat162float(rounded[i]);
  } else {
    buffer.to_host(host);
  }
}

void convert_to_bf16(const float* in, bf16* out, long n, cudaStream_t stream) {
  if (n == 0) return;
  const int blocks = int(std::min<long>((n + 255) / 256, 4096));
  convert_float_to_bf16<<<blocks, 256, 0, stream>>>(in, out, n);
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

void convert_to_float(const bf16* in, float* out, long n, cudaStream_t stream) {
  if (n == 0) return;
  const int blocks = int(std::min<long>((n + 255) / 256, 4096));
  convert_bf16_to_float<<<blocks, 256, 0, stream>>>(in, out, n);
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

template DeviceBuffer<float> upload<float>(const float*, std::size_t);
template DeviceBuffer<bf16> upload<bf16>(const float*, std::size_t);
template void download<float>(const DeviceBuffer<float>&, float*);
template void download<bf16>(const DeviceBuffer<bf16>&, float*);

}  // namespace loglinear::cuda
