// The decay factory (SPEC.md §14.2): key = file name under decay/. Shared shape checks live in
// decay_checks.hpp; each parameterisation's code lives in its own file.
#include <loglinear/decay/decay.hpp>

#include <stdexcept>

namespace loglinear::decay {

std::vector<std::string> decay_names() {
  return {"mamba2", "gla", "hgrn2", "lightnet", "tnl", "tnl_l", "simple_decay"};
}

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_decay(const std::string& key, const DecayOptions& opt) {
  if (opt.heads < 1)
    throw std::invalid_argument("heads: expected >= 1, got " + std::to_string(opt.heads));
  if (key == "mamba2") return make_mamba2<Scalar>(opt);
  if (key == "gla") return make_gla<Scalar>(opt);
  if (key == "hgrn2") return make_hgrn2<Scalar>(opt);
  if (key == "lightnet") return make_lightnet<Scalar>(opt);
  if (key == "tnl") return make_tnl<Scalar>(opt);
  if (key == "tnl_l") return make_tnl_l<Scalar>(opt);
  if (key == "simple_decay") return make_simple_decay<Scalar>(opt);
  std::string known;
  for (const auto& n : decay_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("decay: expected one of " + known + ", got \"" + key + "\"");
}

template std::unique_ptr<Decay<float>> make_decay<float>(const std::string&, const DecayOptions&);
template std::unique_ptr<Decay<double>> make_decay<double>(const std::string&, const DecayOptions&);

}  // namespace loglinear::decay
