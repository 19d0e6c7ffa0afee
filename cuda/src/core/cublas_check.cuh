// Error handling of every cuBLAS call (as cuda_check.cuh does for the runtime): a failure throws
// std::runtime_error naming the call and cuBLAS's status string.
#pragma once

#include <cublas_v2.h>

#include <stdexcept>
#include <string>

namespace loglinear::cuda {

/// Throws std::runtime_error("<call>: <cuBLAS status>") on failure.
inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(call) + ": " + cublasGetStatusString(status));
}

}  // namespace loglinear::cuda

#define LOGLINEAR_CUBLAS_CHECK(call) ::loglinear::cuda::check_cublas((call), #call)
