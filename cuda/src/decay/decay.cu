// GPU twin of reference/loglinear/decay/decay.cpp (SPEC.md §14.2): the factory that builds the
// twin of a CPU decay by its key; each parameterisation's kernels live in the file named after
// it, the shared checks in twin.cuh. No cost of its own.
#include <loglinear/cuda/decay/decay.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::cuda::decay {

std::unique_ptr<Decay> make_decay(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  const std::string key = cpu.name();
  if (key == "mamba2") return make_mamba2(cpu, ctx);
  if (key == "gla") return make_gla(cpu, ctx);
  if (key == "hgrn2") return make_hgrn2(cpu, ctx);
  if (key == "lightnet") return make_lightnet(cpu, ctx);
  if (key == "tnl") return make_tnl(cpu, ctx);
  if (key == "tnl_l") return make_tnl_l(cpu, ctx);
  if (key == "simple_decay") return make_simple_decay(cpu, ctx);
  std::string known;
  for (const auto& n : ::loglinear::decay::decay_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("decay: expected one of " + known + ", got \"" + key + "\"");
}

}  // namespace loglinear::cuda::decay
