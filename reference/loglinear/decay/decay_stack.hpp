// One decay per layer of a model, plus the parameters a decay shares across layers (SPEC.md
// §14.2: hgrn2's lower-bound table Gamma [layers, H]). Models hold a DecayStack and call only
// this interface: forward() once before the layers' forward, each layer's Decay, backward() once
// after the layers' backward. No model knows which decay it holds.
/// \file
/// \brief One decay per layer of a model, plus the parameters a decay shares across layers (SPEC.md §14.2)
/// \ingroup floor_operator
#pragma once

#include <loglinear/decay/decay.hpp>

namespace loglinear::decay {

/// The decays of a model's layers and their shared parameters.
template <class Scalar>
class DecayStack {
 public:
  virtual ~DecayStack() = default;
  /// The factory key of every layer's decay.
  const std::string& name() const { return name_; }
  /// Number of layers.
  Index size() const { return Index(layers_.size()); }
  /// The decay of layer i, 0 <= i < size(). @throws std::invalid_argument "layer: ..." otherwise.
  Decay<Scalar>& layer(Index i);
  /// True if g depends on the input (every layer alike).
  bool data_dependent() const { return layers_.front()->data_dependent(); }
  /// Parameters shared by all layers, before the layers' own in checkpoint order
  /// (hgrn2: "hgrn2.Gamma" [layers, H]; none for the other decays).
  virtual std::vector<Param<Scalar>*> shared_params() { return {}; }
  /// Before the layers' forward of a model step: derives per-layer settings from the shared
  /// parameters (hgrn2: each layer's lower bound from Gamma). No-op without shared parameters.
  virtual void forward() {}
  /// After every layer's backward: ADDS the gradient of the shared parameters (hgrn2: dGamma from
  /// the layers' lower-bound gradients). No-op without shared parameters.
  virtual void backward() {}

 protected:
  /// A stack named `name` (the factory key) holding `layers`, one decay per layer.
  DecayStack(std::string name, std::vector<std::unique_ptr<Decay<Scalar>>> layers)
      : name_(std::move(name)), layers_(std::move(layers)) {}
  std::string name_;                                     ///< factory key
  std::vector<std::unique_ptr<Decay<Scalar>>> layers_;   ///< one per layer
  template <class S>
  friend std::unique_ptr<DecayStack<S>> make_decay_stack(const std::string&, const DecayOptions&, Index);
};

/// Builds `num_layers` decays named `key`: layer i gets opt with layer = i, num_layers set,
/// prefix "layers.<i>." and seed opt.seed + i (so layers draw independent dt_bias values).
/// @throws std::invalid_argument as make_decay, or "layers: ..." if num_layers < 1.
template <class Scalar>
std::unique_ptr<DecayStack<Scalar>> make_decay_stack(const std::string& key, const DecayOptions& opt,
                                                     Index num_layers);

/// hgrn2's stack: owns Gamma and feeds each layer's lower bound (hgrn2.cpp).
template <class Scalar>
std::unique_ptr<DecayStack<Scalar>> make_hgrn2_stack(const DecayOptions& opt, Index num_layers);

}  // namespace loglinear::decay
