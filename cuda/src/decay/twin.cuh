// What every decay's GPU twin shares: the CPU twin's shape check (decay/decay_checks.hpp) on device
// matrices with the same messages, building from a CPU twin (check its key, upload its [1, H]
// parameters after checking names and shapes). No SPEC section;
// O(parameters).
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/decay/decay.hpp>

#include "../core/launch.cuh"
#include "../core/twin.cuh"

#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::cuda::decay::detail {

/// Throws std::invalid_argument naming `name` unless m is [rows, H] (rows = -1: any, divisible by
/// B), with decay::detail::check_decay_shape's message.
inline void check_decay_shape(const std::string& name, const DeviceMatrix& m, Index H, Index rows, Index B = 1) {
  const bool ok = m.cols() == H && (rows < 0 ? (B > 0 && m.rows() % B == 0) : m.rows() == rows);
  if (ok) return;
  throw std::invalid_argument(name + ": expected shape [B*T, H] with H = " + std::to_string(H) +
                              (rows < 0 ? " and rows divisible by B = " + std::to_string(B)
                                        : " and B*T = " + std::to_string(rows)) +
                              ", got [" + std::to_string(m.rows()) + "," + std::to_string(m.cols()) + "]");
}

/// The device twins of cpu.params(), after checking that cpu has key `key` and that its
/// parameters are named <prefix><suffixes[i]> with shape [1, H], in that order (core/twin.cuh).
/// Synchronous. @throws std::invalid_argument "cpu: ..." naming what differs.
inline std::vector<DeviceParam> twin_params(::loglinear::decay::Decay<float>& cpu, const std::string& key,
                                            const std::vector<std::string>& suffixes, Context& ctx) {
  std::vector<cuda::detail::ParamShape> expected;
  for (const std::string& s : suffixes) expected.push_back({s, 1, cpu.options().heads});
  return cuda::detail::twin_params("decay", cpu.name(), key, cpu.params(), expected, ctx);
}

/// dst[0 .. n) = 0, queued on ctx's stream.
inline void zero_device(Context& ctx, float* dst, Index n) {
  if (n > 0) check_cuda(cudaMemsetAsync(dst, 0, std::size_t(n) * sizeof(float), ctx.stream()), "cudaMemsetAsync");
}

}  // namespace loglinear::cuda::decay::detail
