// GPU twin of reference/loglinear/train/clip.hpp: global gradient-norm clipping
// (torch.nn.utils.clip_grad_norm_) over every DeviceParam, with the norm reduced on the GPU. The
// squared norm is summed per parameter in fixed blocks, then over blocks and parameters in a fixed
// order in double, so the result does not depend on timing; the scale is decided on the device, so
// clipping needs no copy to the host. O(parameters), three launches whatever the parameter count.
/// \file
/// \brief GPU twin of train/clip.hpp: global-norm gradient clipping, norm reduced on the device
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/param.hpp>

#include <memory>
#include <vector>

namespace loglinear::cuda::train {

/// Clipping for a fixed list of parameters (their table is uploaded once).
class GlobalNormClip {
 public:
  /// @param params the parameters whose gradients are clipped together (kept by pointer).
  explicit GlobalNormClip(std::vector<DeviceParam*> params);
  ~GlobalNormClip();
  GlobalNormClip(GlobalNormClip&&) noexcept;             ///< movable
  GlobalNormClip& operator=(GlobalNormClip&&) noexcept;  ///< movable

  /// Scales every gradient by max_norm / (norm + 1e-6) when the global L2 norm exceeds max_norm
  /// (as the CPU twin); asynchronous on ctx's stream. @throws std::invalid_argument "max_norm:
  /// expected > 0" otherwise.
  void clip(Context& ctx, double max_norm);
  /// The norm before clipping of the last clip() (waits for the stream).
  double last_norm(Context& ctx) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One-shot form with the CPU twin's signature: clips and RETURNS the norm before clipping
/// (synchronises; the trainer uses GlobalNormClip, which does not).
double clip_grad_norm(Context& ctx, const std::vector<DeviceParam*>& params, double max_norm);

}  // namespace loglinear::cuda::train
