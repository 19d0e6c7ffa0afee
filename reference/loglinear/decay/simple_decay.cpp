// simple_decay (SPEC.md §14.2, the study's own "SD-p", code `hgrn3`): g = log sigmoid(u + Delta),
// Delta [1, H] trainable with a0 = p at u = 0. Data-dependent, O(N H).
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include <cmath>
#include <stdexcept>

namespace loglinear::decay {
namespace {

template <class Scalar>
class SimpleDecay final : public Decay<Scalar> {
 public:
  explicit SimpleDecay(const DecayOptions& opt) : Decay<Scalar>(opt), H_(opt.heads) {
    if (!(opt.p > 0 && opt.p < 1))
      throw std::invalid_argument("p: expected an initial decay rate in (0, 1), got " + std::to_string(opt.p));
    // Delta = logit(p) so that sigmoid(0 + Delta) = p.
    const Scalar logit_p = Scalar(std::log(opt.p / (1 - opt.p)));
    p_.emplace_back(opt.prefix + "Delta", RowMatrix<Scalar>::Constant(1, H_, logit_p), false);
  }
  std::string name() const override { return "simple_decay"; }
  std::vector<Param<Scalar>*> params() override { return {&p_[0]}; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    g_ = (u.rowwise() + p_[0].value.row(0)).unaryExpr([](Scalar x) { return log_sigmoid(x); });
    return g_;
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    // forward: g = log sigmoid(u + Delta), hence dg/du = dg/dDelta = 1 - a = -expm1(g).
    RowMatrix<Scalar> du = dg.cwiseProduct(g_.unaryExpr([](Scalar g) { return -std::expm1(g); }));
    p_[0].grad.row(0) += du.colwise().sum();
    return du;
  }

 private:
  Index H_;
  std::vector<Param<Scalar>> p_;  // Delta
  RowMatrix<Scalar> g_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_simple_decay(const DecayOptions& opt) {
  return std::make_unique<SimpleDecay<Scalar>>(opt);
}

template std::unique_ptr<Decay<float>> make_simple_decay<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_simple_decay<double>(const DecayOptions&);

}  // namespace loglinear::decay
