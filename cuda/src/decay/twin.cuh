// What every decay's GPU twin shares: the CPU twin's shape check (decay/decay_checks.hpp) on device
// matrices with the same messages, building from a CPU twin (check its key, upload its [1, H]
// parameters after checking names and shapes), and a device-to-device copy. No SPEC section;
// O(parameters).
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/decay/decay.hpp>

#include "../core/launch.cuh"

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
/// parameters are named <prefix><suffixes[i]> with shape [1, H], in that order. Synchronous.
/// @throws std::invalid_argument "cpu: ..." naming what differs.
inline std::vector<DeviceParam> twin_params(::loglinear::decay::Decay<float>& cpu, const std::string& key,
                                            const std::vector<std::string>& suffixes, Context& ctx) {
  if (cpu.name() != key) throw std::invalid_argument("cpu: expected a " + key + " decay, got " + cpu.name());
  const Index H = cpu.options().heads;
  const std::vector<Param<float>*> ps = cpu.params();
  if (ps.size() != suffixes.size())
    throw std::invalid_argument("cpu: expected " + std::to_string(suffixes.size()) + " " + key + " parameters, got " +
                                std::to_string(ps.size()));
  std::vector<DeviceParam> out;
  out.reserve(ps.size());
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const Param<float>& p = *ps[i];
    const std::string& s = suffixes[i];
    const bool named = p.name.size() >= s.size() && p.name.compare(p.name.size() - s.size(), s.size(), s) == 0;
    if (!named || p.value.rows() != 1 || p.value.cols() != H)
      throw std::invalid_argument("cpu: expected parameter " + std::to_string(i) + " of " + key + " to be <prefix>" + s +
                                  " [1, " + std::to_string(H) + "], got " + p.name + " [" +
                                  std::to_string(p.value.rows()) + ", " + std::to_string(p.value.cols()) + "]");
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

/// dst[0 .. n) = 0, queued on ctx's stream.
inline void zero_device(Context& ctx, float* dst, Index n) {
  if (n > 0) check_cuda(cudaMemsetAsync(dst, 0, std::size_t(n) * sizeof(float), ctx.stream()), "cudaMemsetAsync");
}

}  // namespace loglinear::cuda::decay::detail
