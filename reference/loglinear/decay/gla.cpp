// gla decay (SPEC.md §14.2, xmixers' form with the temperature inside the sigmoid):
// g = log sigmoid(u / tau). Data-dependent, no parameters, O(N H).
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include <cmath>
#include <stdexcept>

namespace loglinear::decay {
namespace {

template <class Scalar>
class GlaDecay final : public Decay<Scalar> {
 public:
  explicit GlaDecay(const DecayOptions& opt) : Decay<Scalar>(opt), H_(opt.heads), tau_(Scalar(opt.tau)) {
    if (!(opt.tau > 0)) throw std::invalid_argument("tau: expected > 0, got " + std::to_string(opt.tau));
  }
  std::string name() const override { return "gla"; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    // log sigmoid as -softplus(-x): the code's log(sigmoid(x)) reaches -inf for x << 0.
    g_ = u.unaryExpr([this](Scalar x) { return log_sigmoid(x / tau_); });
    return g_;
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    // forward: g = log sigmoid(u / tau), hence dg/du = (1 - sigmoid(u / tau)) / tau = -expm1(g) / tau.
    return dg.cwiseProduct(g_.unaryExpr([this](Scalar g) { return -std::expm1(g) / tau_; }));
  }

 private:
  Index H_;
  Scalar tau_;
  RowMatrix<Scalar> g_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_gla(const DecayOptions& opt) {
  return std::make_unique<GlaDecay<Scalar>>(opt);
}

template std::unique_ptr<Decay<float>> make_gla<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_gla<double>(const DecayOptions&);

}  // namespace loglinear::decay
