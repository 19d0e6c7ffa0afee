// GPU twin of reference/loglinear/decay/decay_stack.cpp (SPEC.md §14.2): the per-layer decay stack
// for decays without shared parameters, and the factory that builds the twin of a CPU stack
// (hgrn2.cu has the stack with the shared table). No cost of its own.
#include <loglinear/cuda/decay/decay_stack.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::cuda::decay {
namespace {
// Every decay but hgrn2: layers are independent, nothing shared.
class PlainStack final : public DecayStack {
 public:
  PlainStack(std::string name, std::vector<std::unique_ptr<Decay>> layers)
      : DecayStack(std::move(name), std::move(layers)) {}
};
}  // namespace

Decay& DecayStack::layer(Index i) {
  if (i < 0 || i >= size())
    throw std::invalid_argument("layer: expected 0 <= layer < " + std::to_string(size()) + ", got " + std::to_string(i));
  return *layers_[std::size_t(i)];
}

std::unique_ptr<DecayStack> make_decay_stack(::loglinear::decay::DecayStack<float>& cpu, Context& ctx) {
  // The CPU factory refuses num_layers < 1; a stack built otherwise would leave data_dependent()
  // reading layers_.front() of nothing.
  if (cpu.size() < 1) throw std::invalid_argument("cpu: expected a stack of >= 1 layers, got 0");
  if (cpu.name() == "hgrn2") return make_hgrn2_stack(cpu, ctx);
  if (!cpu.shared_params().empty())
    throw std::invalid_argument("cpu: expected no shared parameters for the " + cpu.name() + " stack, got " +
                                std::to_string(cpu.shared_params().size()));
  std::vector<std::unique_ptr<Decay>> layers;
  for (Index i = 0; i < cpu.size(); ++i) layers.push_back(make_decay(cpu.layer(i), ctx));
  return std::make_unique<PlainStack>(cpu.name(), std::move(layers));
}

}  // namespace loglinear::cuda::decay
