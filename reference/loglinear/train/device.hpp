// Where a run trains: the devices the training loop can build a model and an optimiser on. "cpu"
// is always there; a backend adds itself by calling register_device (the CUDA one:
// loglinear::cuda::train::register_cuda_device(), which loglinear-train calls when it is built
// with CUDA). Registration is explicit, not a static initialiser, so that linking the CUDA
// library never changes what the CPU library does behind the caller's back.
/// \file
/// \brief The devices a run can train on: cpu always, cuda when a backend registers it
/// \ingroup floor_train
#pragma once

#include <loglinear/train/model.hpp>
#include <loglinear/train/optimizer.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace loglinear::train {

/// What a device gives the training loop.
struct Device {
  std::string name;  ///< the --device value, e.g. "cuda"
  /// Builds the model of cfg on this device (the same weights make_model gives on the CPU).
  std::function<std::unique_ptr<Model>(const ModelConfig& cfg, Index vocab, Index levels, std::uint64_t seed)>
      make_model;
  /// Builds the optimiser of a model this device made.
  std::function<std::unique_ptr<Optimizer>(Model& model, double weight_decay)> make_optimizer;
  /// One line naming the hardware, recorded in the result JSON (e.g. the GPU's name).
  std::function<std::string()> describe;
  /// The versions of the libraries the device runs on, recorded in the JSON under build (e.g.
  /// "CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.0"); may be empty (the CPU: the build record has them).
  std::function<std::string()> libraries;
  /// Peak device memory this process has allocated so far, in bytes (0 where not tracked).
  std::function<double()> peak_memory_bytes;
  /// Checks the settings this device cannot run before anything is built (e.g. the GPU runs only
  /// the chunked form). @throws std::invalid_argument naming the flag.
  std::function<void(const ModelConfig& cfg)> validate;
};

/// Adds (or replaces) a device under dev.name.
void register_device(Device dev);
/// The device named `name`: "cpu", or one a backend registered.
/// @throws std::invalid_argument "--device: ..." naming the known devices, and for "cuda" in a
///         build without the CUDA backend, saying how to build it.
const Device& find_device(const std::string& name);
/// Names of the registered devices ("cpu" first).
std::vector<std::string> device_names();

}  // namespace loglinear::train
