// mlp_softplus (SPEC.md §7.2, adaptive memory decay): lam = softplus(W2 GELU(W1 dl + b1) + b2),
// b2 = 0.54 so that lam ~ 0.9992 at init (W2 = 0). The MLP itself is mlp.cpp.
#include <loglinear/core/activations.hpp>
#include <loglinear/lambda/mlp.hpp>

namespace loglinear::lambda {
namespace {

template <class Scalar>
class MlpSoftplus final : public detail::MlpLevelWeights<Scalar> {
 public:
  MlpSoftplus(const LevelWeightsOptions& o, std::mt19937_64& rng)
      : detail::MlpLevelWeights<Scalar>(o, Scalar(0.54), rng) {}
  std::string name() const override { return "mlp_softplus"; }

 protected:
  RowMatrix<Scalar> output(const RowMatrix<Scalar>& pre) override {
    pre_ = pre;
    return pre.unaryExpr([](Scalar x) { return softplus(x); });
  }
  // forward: lam = softplus(pre), hence dpre = dlam ⊙ sigmoid(pre).
  RowMatrix<Scalar> output_backward(const RowMatrix<Scalar>& dlam) override {
    return dlam.cwiseProduct(pre_.unaryExpr([](Scalar x) { return sigmoid(x); }));
  }

 private:
  RowMatrix<Scalar> pre_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_mlp_softplus(const LevelWeightsOptions& opt, std::mt19937_64& rng) {
  return std::make_unique<MlpSoftplus<Scalar>>(opt, rng);
}
template std::unique_ptr<LevelWeights<float>> make_mlp_softplus<float>(const LevelWeightsOptions&, std::mt19937_64&);
template std::unique_ptr<LevelWeights<double>> make_mlp_softplus<double>(const LevelWeightsOptions&, std::mt19937_64&);

}  // namespace loglinear::lambda
