// GPU twin of reference/loglinear/train/adamw.hpp: Adam / AdamW with decoupled weight decay
// (torch.optim.AdamW's update) over every DeviceParam in one multi-tensor launch per step, the
// moments on the device. The update is written operation for operation as the CPU twin's, in
// float32, so both agree to rounding (the GPU contracts a*b + c into fused multiply-adds). Weight
// decay applies only to parameters whose weight_decay is set (not norms, biases, decay or level
// parameters). The learning rate comes from the host schedule (train/schedule.hpp) as a scalar
// argument, so the schedule needs no twin. O(parameters) a step.
/// \file
/// \brief GPU twin of train/adamw.hpp: AdamW over device parameters, one launch per step
/// \ingroup floor_cuda
#pragma once

#include <loglinear/core/tensor.hpp>
#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/param.hpp>

#include <memory>
#include <vector>

namespace loglinear::cuda::train {

/// Adam(W) state for a fixed list of device parameters.
class AdamW {
 public:
  /// @param params the tensors to update (their grad fields are read); moments start at zero.
  /// @param beta1, beta2 moment decay rates @param eps denominator floor
  /// @param weight_decay decoupled decay, only for params with weight_decay set
  /// @param ctx the context whose stream zeroes the moments
  AdamW(std::vector<DeviceParam*> params, double beta1, double beta2, double eps, double weight_decay, Context& ctx);
  ~AdamW();
  AdamW(AdamW&&) noexcept;             ///< movable
  AdamW& operator=(AdamW&&) noexcept;  ///< movable

  /// One update with learning rate `lr` from the current gradients; asynchronous.
  void step(Context& ctx, double lr);
  /// Number of steps taken.
  long steps() const;
  /// Restores the step count after loading the moments (bias correction depends on it).
  void set_steps(long t);
  /// First (which = 0) or second (which = 1) moments as host matrices, one per parameter (waits).
  std::vector<RowMatrix<float>> moments(Context& ctx, int which) const;
  /// Sets the first (0) or second (1) moments from host matrices of the parameters' shapes.
  /// @throws std::invalid_argument "moments: ..." on a count or shape mismatch.
  void set_moments(Context& ctx, int which, const std::vector<RowMatrix<float>>& values);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loglinear::cuda::train
