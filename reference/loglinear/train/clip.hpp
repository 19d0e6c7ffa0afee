// Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_): one norm over every parameter's
// gradient, then one scale. O(parameters).
/// \file
/// \brief Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_)
/// \ingroup floor_train
#pragma once

#include <loglinear/core/param.hpp>

#include <vector>

namespace loglinear::train {

/// Scales all gradients so that their global L2 norm is at most `max_norm`; returns the norm
/// before clipping (as torch.nn.utils.clip_grad_norm_).
template <class Scalar>
double clip_grad_norm(const std::vector<Param<Scalar>*>& params, double max_norm);

}  // namespace loglinear::train
