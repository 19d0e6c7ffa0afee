// Elementwise helpers of the GPU models that have no layer of their own on the CPU (there they are
// one Eigen expression, e.g. the residual `linear_forward(o, Wo) + x`). O(size) each.
/// \file
/// \brief Elementwise helpers of the GPU models (residual adds)
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>

namespace loglinear::cuda {

/// y += x (same shape). @throws std::invalid_argument "x: expected the shape of y ..." otherwise.
void add_into(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y);

}  // namespace loglinear::cuda
