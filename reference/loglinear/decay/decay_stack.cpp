// The per-layer decay stack (decay_stack.hpp): the generic stack for decays without shared
// parameters; hgrn2.cpp has the one with a shared table.
#include <loglinear/decay/decay_stack.hpp>

#include <stdexcept>

namespace loglinear::decay {
namespace {
// Every decay but hgrn2: layers are independent, nothing shared.
template <class Scalar>
class PlainStack final : public DecayStack<Scalar> {
 public:
  PlainStack(std::string name, std::vector<std::unique_ptr<Decay<Scalar>>> layers)
      : DecayStack<Scalar>(std::move(name), std::move(layers)) {}
};
}  // namespace

template <class Scalar>
Decay<Scalar>& DecayStack<Scalar>::layer(Index i) {
  if (i < 0 || i >= size())
    throw std::invalid_argument("layer: expected 0 <= layer < " + std::to_string(size()) + ", got " + std::to_string(i));
  return *layers_[size_t(i)];
}

template <class Scalar>
std::unique_ptr<DecayStack<Scalar>> make_decay_stack(const std::string& key, const DecayOptions& opt,
                                                     Index num_layers) {
  if (num_layers < 1) throw std::invalid_argument("layers: expected >= 1, got " + std::to_string(num_layers));
  if (key == "hgrn2") return make_hgrn2_stack<Scalar>(opt, num_layers);
  std::vector<std::unique_ptr<Decay<Scalar>>> layers;
  for (Index i = 0; i < num_layers; ++i) {
    DecayOptions o = opt;
    o.layer = i;
    o.num_layers = num_layers;
    o.prefix = opt.prefix + "layers." + std::to_string(i) + ".";
    o.seed = opt.seed + std::uint64_t(i);
    layers.push_back(make_decay<Scalar>(key, o));
  }
  return std::make_unique<PlainStack<Scalar>>(key, std::move(layers));
}

template class DecayStack<float>;
template class DecayStack<double>;
template std::unique_ptr<DecayStack<float>> make_decay_stack<float>(const std::string&, const DecayOptions&, Index);
template std::unique_ptr<DecayStack<double>> make_decay_stack<double>(const std::string&, const DecayOptions&, Index);

}  // namespace loglinear::decay
