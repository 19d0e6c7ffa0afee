// Device discovery (loglinear/cuda/device.hpp): a missing GPU or driver is an answer (false), not
// an error, so that the tests can skip cleanly on CI machines (cudaGetDeviceCount returns
// cudaErrorInsufficientDriver there). No SPEC section; one driver query per call.
#include <loglinear/cuda/device.hpp>

#include "cuda_check.cuh"

#include <cublas_v2.h>

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

namespace {
// CUDA encodes versions as 1000 * major + 10 * minor.
std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

std::string library_versions() {
  if (!device_available()) throw std::runtime_error("library_versions: no CUDA device is available");
  int runtime = 0, driver = 0, major = 0, minor = 0, patch = 0;
  LOGLINEAR_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  LOGLINEAR_CUDA_CHECK(cudaDriverGetVersion(&driver));
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  return "CUDA runtime " + cuda_version(runtime) + ", driver " + cuda_version(driver) + ", cuBLAS " +
         std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace loglinear::cuda
