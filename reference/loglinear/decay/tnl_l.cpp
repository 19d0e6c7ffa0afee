// tnl_l decay (SPEC.md §14.2 "TNL-L", xmixers' learned TNL): the plain learned static decay, one
// trainable log-decay per head, independent of the data and of t. Kept <= 0 by a softplus:
// g_h = -softplus(theta_h), started at TNL's rates (tnl.cpp is the fixed twin). O(N H).
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include <stdexcept>

namespace loglinear::decay {
namespace {

template <class Scalar>
class TnlLDecay final : public Decay<Scalar> {
 public:
  explicit TnlLDecay(const DecayOptions& opt) : Decay<Scalar>(opt), H_(opt.heads) {
    if (opt.layer < 0 || (opt.num_layers > 0 && opt.layer >= opt.num_layers))
      throw std::invalid_argument("layer: expected in [0, " + std::to_string(opt.num_layers) + "), got " +
                                  std::to_string(opt.layer));
    // theta = softplus^-1(-g_tnl), so that at init g equals tnl's rate of this head and layer
    // (-g_tnl >= 1e-5 / 256 > 0, where softplus^-1 is finite).
    RowMatrix<Scalar> theta(1, H_);
    for (Index h = 0; h < H_; ++h)
      theta(0, h) = softplus_inverse(Scalar(-detail::tnl_rate(h, H_, opt.layer, opt.num_layers)));
    p_.emplace_back(opt.prefix + "theta", theta, false);
  }
  std::string name() const override { return "tnl_l"; }
  bool data_dependent() const override { return false; }
  std::vector<Param<Scalar>*> params() override { return {&p_[0]}; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    rows_ = u.rows();
    // g_h = -softplus(theta_h) <= 0 for every theta (exactly 0 only where softplus underflows).
    const RowMatrix<Scalar> g_row = -p_[0].value.unaryExpr([](Scalar x) { return softplus(x); });
    return g_row.replicate(rows_, 1);
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, rows_);
    // forward: g[n, h] = -softplus(theta_h) for every row n, hence
    // dtheta_h = -sigmoid(theta_h) sum_n dg[n, h]; g does not depend on u.
    const RowMatrix<Scalar> sum = dg.colwise().sum();
    for (Index h = 0; h < H_; ++h) p_[0].grad(0, h) -= sigmoid(p_[0].value(0, h)) * sum(0, h);
    return RowMatrix<Scalar>::Zero(dg.rows(), H_);
  }

 private:
  Index H_, rows_ = 0;
  std::vector<Param<Scalar>> p_;  // theta [1, H]
};

}  // namespace

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_tnl_l(const DecayOptions& opt) {
  return std::make_unique<TnlLDecay<Scalar>>(opt);
}

template std::unique_ptr<Decay<float>> make_tnl_l<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_tnl_l<double>(const DecayOptions&);

}  // namespace loglinear::decay
