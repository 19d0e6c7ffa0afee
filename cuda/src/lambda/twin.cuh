// What every lambda mode's GPU twin does when it is built from its CPU twin: check the mode and
// upload its parameters after checking their names and shapes (lambda.hpp documents them). No SPEC
// section; O(parameters).
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/lambda/lambda.hpp>

#include "../core/twin.cuh"

#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::cuda::lambda::detail {

using cuda::detail::ParamShape;

/// The device twins of cpu.params(), after checking that cpu is mode `mode` and that its
/// parameters are `expected` (core/twin.cuh). Synchronous.
/// @throws std::invalid_argument "cpu: ..." naming what differs.
inline std::vector<DeviceParam> twin_params(::loglinear::lambda::LevelWeights<float>& cpu, const std::string& mode,
                                            const std::vector<ParamShape>& expected, Context& ctx) {
  return cuda::detail::twin_params("lambda", cpu.name(), mode, cpu.params(), expected, ctx);
}

}  // namespace loglinear::cuda::lambda::detail
