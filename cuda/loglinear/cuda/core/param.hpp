// GPU twin of reference/loglinear/core/param.hpp: a named trainable tensor with its gradient, both
// on the device. A GPU layer is built from its CPU twin's initialised Params (uploaded), so that
// the two start from the same weights, and a GPU model moves its Params to and from host Params
// for checkpoints (one format for both devices: train/checkpoint.hpp).
/// \file
/// \brief GPU twin of core/param.hpp: a named trainable tensor and its gradient on the device
/// \ingroup floor_cuda
#pragma once

#include <loglinear/core/param.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

#include <string>
#include <vector>

namespace loglinear::cuda {

/// One trainable tensor on the device: value and gradient of the same shape.
struct DeviceParam {
  std::string name;          ///< the CPU twin's name, e.g. "layers.0.Wq" (checkpoint key)
  DeviceMatrix value;        ///< the parameter
  DeviceMatrix grad;         ///< d(loss)/d(value); backward passes ADD into it
  bool weight_decay = true;  ///< as Param::weight_decay

  DeviceParam() = default;
  /// Uploads `host`'s value; the gradient starts at zero. Synchronous.
  DeviceParam(const Param<float>& host, cudaStream_t stream);
  /// Copies `host`'s value in (same name and shape required).
  /// @throws std::invalid_argument naming the parameter on a name or shape mismatch.
  void upload(const Param<float>& host, cudaStream_t stream);
  /// Copies value and gradient out into `host` (same name and shape required); waits for `stream`.
  /// @throws std::invalid_argument as upload.
  void download(Param<float>& host, cudaStream_t stream) const;
};

/// Checks that a GPU twin lists its parameters as its CPU twin does: same count, same names, same
/// order (the checkpoint's order). Every GPU model calls it at construction.
/// @param who names the twin in the message, e.g. "cuda::nn::TaskModel"
/// @param cpu the CPU twin's params() @param gpu the GPU twin's params()
/// @throws std::logic_error naming the first parameter that differs.
void check_same_params(const std::string& who, const std::vector<Param<float>*>& cpu,
                       const std::vector<DeviceParam*>& gpu);

}  // namespace loglinear::cuda
