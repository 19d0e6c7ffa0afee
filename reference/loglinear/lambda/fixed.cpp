// fixed (SPEC.md §7.1, the original log-linear Mamba-2): lam = softplus(Lp[h] ⊙ dl), Lp [H, L]
// initialised to 1 and excluded from weight decay. O(N H L) both ways.
#include <loglinear/core/activations.hpp>
#include <loglinear/lambda/lambda.hpp>

namespace loglinear::lambda {
namespace {

template <class Scalar>
class Fixed final : public LevelWeights<Scalar> {
  using Base = LevelWeights<Scalar>;
  using Base::H_;

 public:
  explicit Fixed(const LevelWeightsOptions& o)
      : Base(o.heads, o.levels), Lp_(o.prefix + "Lp", RowMatrix<Scalar>::Ones(o.heads, o.levels), false) {}
  std::string name() const override { return "fixed"; }
  std::vector<Param<Scalar>*> params() override { return {&Lp_}; }

 protected:
  RowMatrix<Scalar> forward_rows(const RowMatrix<Scalar>& dl) override {
    dl_ = dl;
    pre_.resize(dl.rows(), dl.cols());
    for (Index r = 0; r < dl.rows(); ++r) pre_.row(r) = dl.row(r).cwiseProduct(Lp_.value.row(r % H_));
    return pre_.unaryExpr([](Scalar x) { return softplus(x); });
  }
  RowMatrix<Scalar> backward_rows(const RowMatrix<Scalar>& dlam) override {
    // forward: lam = softplus(pre), pre = Lp[h] ⊙ dl; softplus' = sigmoid.
    const RowMatrix<Scalar> dpre = dlam.cwiseProduct(pre_.unaryExpr([](Scalar x) { return sigmoid(x); }));
    RowMatrix<Scalar> ddl(dlam.rows(), dlam.cols());
    for (Index r = 0; r < dlam.rows(); ++r) {
      Lp_.grad.row(r % H_) += dpre.row(r).cwiseProduct(dl_.row(r));
      ddl.row(r) = dpre.row(r).cwiseProduct(Lp_.value.row(r % H_));
    }
    return ddl;
  }

 private:
  Param<Scalar> Lp_;
  RowMatrix<Scalar> dl_, pre_;  // cache of the last forward
};

}  // namespace

template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_fixed(const LevelWeightsOptions& opt) {
  return std::make_unique<Fixed<Scalar>>(opt);
}
template std::unique_ptr<LevelWeights<float>> make_fixed<float>(const LevelWeightsOptions&);
template std::unique_ptr<LevelWeights<double>> make_fixed<double>(const LevelWeightsOptions&);

}  // namespace loglinear::lambda
