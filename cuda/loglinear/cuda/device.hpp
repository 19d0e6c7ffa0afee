// Device discovery of the CUDA backend: whether a GPU can run here, and which one. No SPEC
// section; costs one driver query. The chunked form (chunked.hpp) and the decoding step
// (decoder.hpp) throw std::runtime_error when device_available() is false.
/// \file
/// \brief Device discovery of the CUDA backend
/// \ingroup floor_cuda
#pragma once

#include <string>

namespace loglinear::cuda {

/// True if a CUDA device is usable (false, without throwing, when there is no GPU or driver).
bool device_available();

/// Name of device 0 and its compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
/// @throws std::runtime_error if no device is available.
std::string device_name();
/// The versions this process runs on: "CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.2" (the runtime
/// and cuBLAS linked, the driver installed); for the provenance record of a run.
/// @throws std::runtime_error if no CUDA device is available.
std::string library_versions();

}  // namespace loglinear::cuda
