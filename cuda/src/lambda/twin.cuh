// What every lambda mode's GPU twin does when it is built from its CPU twin: check the mode and
// upload its parameters after checking their names and shapes (lambda.hpp documents them). Also
// the device-to-device copy the modes cache their inputs with. No SPEC section; O(parameters).
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/lambda/lambda.hpp>

#include "../core/launch.cuh"

#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::cuda::lambda::detail {

/// The name and shape one parameter of a mode must have (its name ends in `suffix`).
struct ParamShape {
  std::string suffix;  ///< e.g. "Lp"; the CPU name is the options' prefix + suffix
  Index rows, cols;    ///< expected shape
};

/// The device twins of cpu.params(), after checking that cpu is mode `mode` and that its
/// parameters are `expected` (same count, order, name suffixes and shapes). Synchronous.
/// @throws std::invalid_argument "cpu: ..." naming what differs.
inline std::vector<DeviceParam> twin_params(::loglinear::lambda::LevelWeights<float>& cpu, const std::string& mode,
                                            const std::vector<ParamShape>& expected, Context& ctx) {
  if (cpu.name() != mode) throw std::invalid_argument("cpu: expected a " + mode + " lambda, got " + cpu.name());
  const std::vector<Param<float>*> ps = cpu.params();
  if (ps.size() != expected.size())
    throw std::invalid_argument("cpu: expected " + std::to_string(expected.size()) + " " + mode + " parameters, got " +
                                std::to_string(ps.size()));
  std::vector<DeviceParam> out;
  out.reserve(ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const Param<float>& p = *ps[i];
    const ParamShape& e = expected[i];
    const bool named = p.name.size() >= e.suffix.size() &&
                       p.name.compare(p.name.size() - e.suffix.size(), e.suffix.size(), e.suffix) == 0;
    if (!named || p.value.rows() != e.rows || p.value.cols() != e.cols)
      throw std::invalid_argument("cpu: expected parameter " + std::to_string(i) + " of " + mode + " to be <prefix>" +
                                  e.suffix + " [" + std::to_string(e.rows) + ", " + std::to_string(e.cols) +
                                  "], got " + p.name + " [" + std::to_string(p.value.rows()) + ", " +
                                  std::to_string(p.value.cols()) + "]");
    out.emplace_back(p, ctx.stream());
  }
  return out;
}

/// dst[0 .. n) = src[0 .. n), device to device, queued on ctx's stream.
inline void copy_device(Context& ctx, float* dst, const float* src, Index n) {
  if (n > 0)
    check_cuda(cudaMemcpyAsync(dst, src, std::size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream()),
               "cudaMemcpyAsync (device to device)");
}

}  // namespace loglinear::cuda::lambda::detail
