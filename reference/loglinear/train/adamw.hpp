// Adam / AdamW with decoupled weight decay (torch.optim.AdamW's update), what the sources train
// the task models with (SPEC.md §8, §9). Weight decay applies only to parameters whose
// Param::weight_decay is set (not norms, biases, decay or level parameters). O(parameters) a step.
// Siblings: clip.hpp (global-norm clipping), schedule.hpp (warm-up + cosine learning rate).
/// \file
/// \brief Adam / AdamW with decoupled weight decay (torch.optim.AdamW's update), what the sources train the task models with (SPEC.md §8, §9).
/// \ingroup floor_train
#pragma once

#include <loglinear/core/param.hpp>

#include <vector>

namespace loglinear::train {

/// Adam(W) state for a fixed list of parameters.
template <class Scalar>
class AdamW {
 public:
  /// @param params the tensors to update (their grad fields are read)
  /// @param beta1, beta2 moment decay rates; @param eps denominator floor
  /// @param weight_decay decoupled (AdamW) decay, applied only to params with weight_decay set.
  AdamW(std::vector<Param<Scalar>*> params, double beta1 = 0.9, double beta2 = 0.999,
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

}  // namespace loglinear::train
