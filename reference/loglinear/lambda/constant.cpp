// constant (SPEC.md §7; the "fixed" of the adaptive-decay paper's abstract): lam = softplus(c[h]),
// one learned weight per head and level, the same for every token; c [H, L] starts at
// softplus^-1(1) so lam = 1, excluded from weight decay. d(dl) is exactly zero. O(N H L).
#include <loglinear/core/activations.hpp>
#include <loglinear/lambda/lambda.hpp>

namespace loglinear::lambda {
namespace {

template <class Scalar>
class Constant final : public LevelWeights<Scalar> {
  using Base = LevelWeights<Scalar>;
  using Base::H_;

 public:
  explicit Constant(const LevelWeightsOptions& o)
      : Base(o.heads, o.levels),
        c_(o.prefix + "c", RowMatrix<Scalar>::Constant(o.heads, o.levels, softplus_inverse(Scalar(1))), false) {}
  std::string name() const override { return "constant"; }
  std::vector<Param<Scalar>*> params() override { return {&c_}; }

 protected:
  RowMatrix<Scalar> forward_rows(const RowMatrix<Scalar>& dl) override {
    RowMatrix<Scalar> lam(dl.rows(), dl.cols());
    const RowMatrix<Scalar> lam_h = c_.value.unaryExpr([](Scalar x) { return softplus(x); });
    for (Index r = 0; r < dl.rows(); ++r) lam.row(r) = lam_h.row(r % H_);
    return lam;
  }
  RowMatrix<Scalar> backward_rows(const RowMatrix<Scalar>& dlam) override {
    // forward: lam = softplus(c[h]) for every token, hence dc[h] += sum over its rows of
    // dlam ⊙ sigmoid(c[h]); lam does not depend on dl.
    const RowMatrix<Scalar> slope = c_.value.unaryExpr([](Scalar x) { return sigmoid(x); });
    for (Index r = 0; r < dlam.rows(); ++r) c_.grad.row(r % H_) += dlam.row(r).cwiseProduct(slope.row(r % H_));
    return RowMatrix<Scalar>::Zero(dlam.rows(), dlam.cols());
  }

 private:
  Param<Scalar> c_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_constant(const LevelWeightsOptions& opt) {
  return std::make_unique<Constant<Scalar>>(opt);
}
template std::unique_ptr<LevelWeights<float>> make_constant<float>(const LevelWeightsOptions&);
template std::unique_ptr<LevelWeights<double>> make_constant<double>(const LevelWeightsOptions&);

}  // namespace loglinear::lambda
