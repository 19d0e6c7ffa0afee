// mlp_softmax (the adaptive-decay paper's softmax ablation, SPEC.md §7.2): lam = softmax over the
// L levels of W2 GELU(W1 dl + b1) + b2, b2 = 0 so lam = 1/L at init (W2 = 0). The MLP itself is
// mlp.cpp. Softmax is taken after subtracting the row maximum (no overflow).
#include <loglinear/lambda/mlp.hpp>

namespace loglinear::lambda {
namespace {

template <class Scalar>
class MlpSoftmax final : public detail::MlpLevelWeights<Scalar> {
 public:
  MlpSoftmax(const LevelWeightsOptions& o, std::mt19937_64& rng) : detail::MlpLevelWeights<Scalar>(o, Scalar(0), rng) {}
  std::string name() const override { return "mlp_softmax"; }

 protected:
  RowMatrix<Scalar> output(const RowMatrix<Scalar>& pre) override {
    lam_.resize(pre.rows(), pre.cols());
    for (Index r = 0; r < pre.rows(); ++r) {
      const auto e = (pre.row(r).array() - pre.row(r).maxCoeff()).exp().eval();
      lam_.row(r) = e / e.sum();
    }
    return lam_;
  }
  // forward: lam = softmax(pre), hence dpre = lam ⊙ (dlam - <dlam, lam>) per row.
  RowMatrix<Scalar> output_backward(const RowMatrix<Scalar>& dlam) override {
    RowMatrix<Scalar> dpre(dlam.rows(), dlam.cols());
    for (Index r = 0; r < dlam.rows(); ++r)
      dpre.row(r) = lam_.row(r).cwiseProduct((dlam.row(r).array() - dlam.row(r).dot(lam_.row(r))).matrix());
    return dpre;
  }

 private:
  RowMatrix<Scalar> lam_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_mlp_softmax(const LevelWeightsOptions& opt, std::mt19937_64& rng) {
  return std::make_unique<MlpSoftmax<Scalar>>(opt, rng);
}
template std::unique_ptr<LevelWeights<float>> make_mlp_softmax<float>(const LevelWeightsOptions&, std::mt19937_64&);
template std::unique_ptr<LevelWeights<double>> make_mlp_softmax<double>(const LevelWeightsOptions&, std::mt19937_64&);

}  // namespace loglinear::lambda
