// Adam / AdamW with decoupled weight decay, global gradient-norm clipping and a warm-up + cosine
// learning-rate schedule: what the sources train the task models with (SPEC.md §8, §9).
#pragma once

#include <loglinear/models/param.hpp>

#include <vector>

namespace loglinear::models {

/// Adam(W) state for a fixed list of parameters.
template <class Scalar>
class Adam {
 public:
  /// @param params the tensors to update (their grad fields are read)
  /// @param beta1, beta2 moment decay rates; @param eps denominator floor
  /// @param weight_decay decoupled (AdamW) decay, applied only to params with weight_decay set.
  Adam(std::vector<Param<Scalar>*> params, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0);
  /// One update with learning rate `lr` from the current gradients.
  void step(double lr);
  /// Number of steps taken.
  long steps() const { return t_; }
  /// First and second moments, one per parameter (for checkpoints that resume training).
  std::vector<RowMatrix<Scalar>>& first_moments() { return m_; }
  std::vector<RowMatrix<Scalar>>& second_moments() { return v_; }  ///< see first_moments
  /// Restores the step count after loading the moments (bias correction depends on it).
  void set_steps(long t) { t_ = t; }

 private:
  std::vector<Param<Scalar>*> params_;
  std::vector<RowMatrix<Scalar>> m_, v_;
  double b1_, b2_, eps_, wd_;
  long t_ = 0;
};

/// Scales all gradients so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping (as torch.nn.utils.clip_grad_norm_).
template <class Scalar>
double clip_grad_norm(const std::vector<Param<Scalar>*>& params, double max_norm);

/// Learning rate at `step` (0-based): linear warm-up over `warmup` steps to `peak`, then cosine
/// decay to `peak * final_fraction` at `total` steps. warmup = 0 and final_fraction = 1 give a
/// constant rate (the sources' Adam runs).
double warmup_cosine(long step, long warmup, long total, double peak, double final_fraction);

}  // namespace loglinear::models
