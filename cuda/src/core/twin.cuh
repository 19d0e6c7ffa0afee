// What every parameterised GPU twin does when it is built from its CPU twin (lambda/, decay/):
// check the CPU object's key, then upload its parameters after checking their names and shapes.
// No SPEC section; O(parameters).
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/param.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::cuda::detail {

/// The name and shape one parameter must have (its name ends in `suffix`).
struct ParamShape {
  std::string suffix;  ///< e.g. "Lp"; the CPU name is the options' prefix + suffix
  Index rows, cols;    ///< expected shape
};

/// The device twins of `params` (the CPU twin's params()), after checking that the CPU twin's key
/// `cpu_key` is `key` and that its parameters are `expected` (same count, order, name suffixes and
/// shapes). `kind` ("lambda", "decay") words the messages. Synchronous.
/// @throws std::invalid_argument "cpu: ..." naming what differs.
inline std::vector<DeviceParam> twin_params(const std::string& kind, const std::string& cpu_key, const std::string& key,
                                            const std::vector<Param<float>*>& params,
                                            const std::vector<ParamShape>& expected, Context& ctx) {
  if (cpu_key != key) throw std::invalid_argument("cpu: expected a " + key + " " + kind + ", got " + cpu_key);
  if (params.size() != expected.size())
    throw std::invalid_argument("cpu: expected " + std::to_string(expected.size()) + " " + key + " parameters, got " +
                                std::to_string(params.size()));
  std::vector<DeviceParam> out;
  out.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Param<float>& p = *params[i];
    const ParamShape& e = expected[i];
    const bool named = p.name.size() >= e.suffix.size() &&
                       p.name.compare(p.name.size() - e.suffix.size(), e.suffix.size(), e.suffix) == 0;
    if (!named || p.value.rows() != e.rows || p.value.cols() != e.cols)
      throw std::invalid_argument("cpu: expected parameter " + std::to_string(i) + " of " + key + " to be <prefix>" +
                                  e.suffix + " [" + std::to_string(e.rows) + ", " + std::to_string(e.cols) +
                                  "], got " + p.name + " [" + std::to_string(p.value.rows()) + ", " +
                                  std::to_string(p.value.cols()) + "]");
    out.emplace_back(p, ctx.stream());
  }
  return out;
}

}  // namespace loglinear::cuda::detail
