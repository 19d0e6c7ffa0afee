// GPU twin of reference/loglinear/decay/decay_stack.hpp: one decay per layer of a model plus the
// parameters a decay shares across layers (SPEC.md §14.2: hgrn2's lower-bound table Gamma
// [layers, H]), built FROM an initialised CPU stack. A GPU model calls forward(ctx) once before the
// layers' forward, each layer's Decay, backward(ctx) once after the layers' backward. hgrn2's
// softmax-cumsum over layers runs on the device (one thread per head, in layer order), so no step
// waits for the host. O(layers H) on top of the layers' own cost.
/// \file
/// \brief GPU twin of decay/decay_stack.hpp: per-layer decays and their shared parameters
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/decay/decay.hpp>
#include <loglinear/decay/decay_stack.hpp>

namespace loglinear::cuda::decay {

/// The decays of a model's layers and their shared parameters, twin of decay::DecayStack<float>.
class DecayStack {
 public:
  virtual ~DecayStack() = default;
  /// The factory key of every layer's decay.
  const std::string& name() const { return name_; }
  /// Number of layers.
  Index size() const { return Index(layers_.size()); }
  /// The decay of layer i, 0 <= i < size(). @throws std::invalid_argument "layer: ..." otherwise.
  Decay& layer(Index i);
  /// True if g depends on the input (every layer alike).
  bool data_dependent() const { return layers_.front()->data_dependent(); }
  /// Parameters shared by all layers, as the CPU twin's shared_params() (hgrn2: "hgrn2.Gamma"
  /// [layers, H]; none for the other decays).
  virtual std::vector<DeviceParam*> shared_params() { return {}; }
  /// Before the layers' forward of a step: hgrn2 sets each layer's lower bound from Gamma (on the
  /// device). No-op without shared parameters.
  virtual void forward(Context& ctx) { (void)ctx; }
  /// After every layer's backward: ADDS the shared parameters' gradient (hgrn2: dGamma from the
  /// layers' lower-bound gradients). No-op without shared parameters.
  virtual void backward(Context& ctx) { (void)ctx; }

 protected:
  /// A stack named `name` holding `layers`, one decay per layer (at least one).
  DecayStack(std::string name, std::vector<std::unique_ptr<Decay>> layers)
      : name_(std::move(name)), layers_(std::move(layers)) {}
  std::string name_;                          ///< factory key
  std::vector<std::unique_ptr<Decay>> layers_;  ///< one per layer
};

/// The GPU twin of `cpu`: layer i is make_decay(cpu.layer(i)), shared parameters uploaded.
/// `cpu` is only read (non-const because its layer() and shared_params() are).
/// @throws std::invalid_argument as make_decay, or "cpu: ..." if hgrn2's Gamma does not match.
std::unique_ptr<DecayStack> make_decay_stack(::loglinear::decay::DecayStack<float>& cpu, Context& ctx);

/// hgrn2's stack: owns Gamma and feeds each layer's lower bound (hgrn2.cu).
/// @throws std::invalid_argument "cpu: ..." unless cpu is an hgrn2 stack with Gamma [layers, H].
std::unique_ptr<DecayStack> make_hgrn2_stack(::loglinear::decay::DecayStack<float>& cpu, Context& ctx);

}  // namespace loglinear::cuda::decay
