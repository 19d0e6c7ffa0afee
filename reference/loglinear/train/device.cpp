// The device registry (device.hpp), with the CPU entry built in.
#include <loglinear/train/device.hpp>

#include <omp.h>

#include <map>
#include <stdexcept>
#include <thread>

namespace loglinear::train {
namespace {

Device cpu_device() {
  Device d;
  d.name = "cpu";
  d.make_model = [](const ModelConfig& cfg, Index vocab, Index levels, std::uint64_t seed) {
    return make_model(cfg, vocab, levels, seed);
  };
  d.make_optimizer = [](Model& model, double wd) { return std::make_unique<HostOptimizer>(model, wd); };
  d.describe = [] {
    return "cpu (" + std::to_string(omp_get_max_threads()) + " OpenMP threads of " +
           std::to_string(std::thread::hardware_concurrency()) + " hardware threads)";
  };
  d.peak_memory_bytes = [] { return 0.0; };
  d.validate = [](const ModelConfig& m) {
    if (m.matmul != "fp32")
      throw std::invalid_argument("--matmul " + m.matmul + ": the CPU computes in float32 only (TF32 is the GPU's "
                                  "tensor-core format); use --matmul fp32, or --device cuda");
    if (m.attention != "fp32")
      throw std::invalid_argument("--attention " + m.attention + ": the CPU's operator computes in the model's "
                                  "float type only; use --attention fp32, or --device cuda");
  };
  return d;
}

std::map<std::string, Device>& registry() {
  static std::map<std::string, Device> devices{{"cpu", cpu_device()}};
  return devices;
}

}  // namespace

void register_device(Device dev) {
  const std::string name = dev.name;
  registry()[name] = std::move(dev);
}

std::vector<std::string> device_names() {
  std::vector<std::string> names{"cpu"};
  for (const auto& [name, dev] : registry())
    if (name != "cpu") names.push_back(name);
  return names;
}

const Device& find_device(const std::string& name) {
  const auto& devices = registry();
  const auto it = devices.find(name);
  if (it != devices.end()) return it->second;
  if (name == "cuda")
    throw std::invalid_argument("--device cuda: this build has no CUDA backend; rebuild with -DLOGLINEAR_CUDA=ON "
                                "on a machine with the CUDA toolkit (nvcc), or train with --device cpu");
  std::string known;
  for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("--device: expected one of " + known + " (cuda where built with it), got \"" + name + "\"");
}

}  // namespace loglinear::train
