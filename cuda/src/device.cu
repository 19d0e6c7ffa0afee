// Device discovery (loglinear/cuda/device.hpp): a missing GPU or driver is an answer (false), not
// an error, so that the tests can skip cleanly on CI machines (cudaGetDeviceCount returns
// cudaErrorInsufficientDriver there). No SPEC section; one driver query per call.
#include <loglinear/cuda/device.hpp>

#include "cuda_check.cuh"

namespace loglinear::cuda {

bool device_available() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of the failed query
    return false;
  }
  return count > 0;
}

std::string device_name() {
  if (!device_available()) throw std::runtime_error("device_name: no CUDA device is available");
  cudaDeviceProp prop{};
  LOGLINEAR_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

}  // namespace loglinear::cuda
