// Error handling of every CUDA runtime call in the backend (STYLE.md "Errors"): a failure throws
// std::runtime_error naming the call and CUDA's error string. No SPEC section, no cost beyond the
// call. Used by device.cu, attention/ and bench/gpu/.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace loglinear::cuda {

/// Throws std::runtime_error("<call>: <cuda error string>") on failure.
inline void check_cuda(cudaError_t err, const char* call) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(call) + ": " + cudaGetErrorString(err));
}

}  // namespace loglinear::cuda

#define LOGLINEAR_CUDA_CHECK(call) ::loglinear::cuda::check_cuda((call), #call)

namespace loglinear::cuda {

/// Raises `kernel`'s dynamic shared-memory limit to `bytes`: a launch above the default 48 KB
/// fails without it.
template <class Kernel>
void set_dynamic_smem(Kernel* kernel, std::size_t bytes) {
  LOGLINEAR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

}  // namespace loglinear::cuda
