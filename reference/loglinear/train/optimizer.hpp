// What the training loop needs from the optimiser, whatever device the model lives on: clip the
// global gradient norm, take an AdamW step, and hand its state (moments, step count) to the
// checkpoint. HostOptimizer is the CPU one (clip.hpp + adamw.hpp over Model::params()); the GPU
// one is cuda/loglinear/cuda/train/device.hpp's, with the same update on device memory.
/// \file
/// \brief The optimiser as the training loop sees it (clip, AdamW step, checkpoint state), and the CPU one
/// \ingroup floor_train
#pragma once

#include <loglinear/train/adamw.hpp>
#include <loglinear/train/model.hpp>

#include <memory>
#include <vector>

namespace loglinear::train {

/// Global-norm clipping plus AdamW for the parameters of one model.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// Scales the gradients so that their global L2 norm is at most max_norm (clip.hpp).
  virtual void clip_grad_norm(double max_norm) = 0;
  /// One AdamW update with learning rate lr.
  virtual void step(double lr) = 0;
  /// Steps taken (bias correction depends on it).
  virtual long steps() const = 0;
  /// Restores the step count after loading the moments.
  virtual void set_steps(long t) = 0;
  /// The first (which = 0) or second (1) moments as host matrices, in Model::params() order.
  virtual std::vector<RowMatrix<float>> moments(int which) = 0;
  /// Sets the first (0) or second (1) moments from host matrices in Model::params() order.
  /// @throws std::invalid_argument "moments: ..." on a count or shape mismatch.
  virtual void set_moments(int which, const std::vector<RowMatrix<float>>& values) = 0;
};

/// The CPU optimiser: clip_grad_norm and AdamW<float> on the host Params of a model.
class HostOptimizer : public Optimizer {
 public:
  /// AdamW(beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay) over model.params().
  HostOptimizer(Model& model, double weight_decay);
  void clip_grad_norm(double max_norm) override;          ///< train::clip_grad_norm on the params
  void step(double lr) override { adam_.step(lr); }      ///< AdamW<float>::step
  long steps() const override { return adam_.steps(); }  ///< see Optimizer
  void set_steps(long t) override { adam_.set_steps(t); }  ///< see Optimizer
  std::vector<RowMatrix<float>> moments(int which) override;  ///< copies of AdamW's moments
  void set_moments(int which, const std::vector<RowMatrix<float>>& values) override;  ///< see Optimizer

 private:
  std::vector<Param<float>*> params_;
  AdamW<float> adam_;
};

}  // namespace loglinear::train
