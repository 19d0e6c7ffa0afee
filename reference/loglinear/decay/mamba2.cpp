// mamba2 decay (SPEC.md §14.2, §8): g = -exp(A_log) softplus(u + dt_bias), the decay of the
// log-linear Mamba-2 layer. Data-dependent, two [1, H] parameters, O(N H).
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include <cmath>
#include <random>

namespace loglinear::decay {
namespace {

template <class Scalar>
class Mamba2Decay final : public Decay<Scalar> {
 public:
  explicit Mamba2Decay(const DecayOptions& opt) : Decay<Scalar>(opt), H_(opt.heads) {
    // A = -(1..H), as the §8 layer.
    std::mt19937_64 rng(opt.seed);
    RowMatrix<Scalar> alog(1, H_);
    for (Index h = 0; h < H_; ++h) alog(0, h) = Scalar(std::log(double(h + 1)));
    p_.emplace_back(opt.prefix + "dt_bias", mamba2_dt_bias_init<Scalar>(H_, rng), false);
    p_.emplace_back(opt.prefix + "A_log", alog, false);
  }
  std::string name() const override { return "mamba2"; }
  std::vector<Param<Scalar>*> params() override { return {&p_[0], &p_[1]}; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    pre_ = u.rowwise() + p_[0].value.row(0);
    g_.resize(u.rows(), H_);
    for (Index n = 0; n < u.rows(); ++n)
      for (Index h = 0; h < H_; ++h)
        g_(n, h) = -std::exp(p_[1].value(0, h)) * softplus(pre_(n, h));
    return g_;
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    // forward: g = -exp(A_log) sp(pre), pre = u + dt_bias; sp' = sigmoid, and dg/dA_log = g.
    RowMatrix<Scalar> du(dg.rows(), H_);
    for (Index n = 0; n < dg.rows(); ++n)
      for (Index h = 0; h < H_; ++h) {
        du(n, h) = -dg(n, h) * std::exp(p_[1].value(0, h)) * sigmoid(pre_(n, h));
        p_[1].grad(0, h) += dg(n, h) * g_(n, h);
      }
    p_[0].grad.row(0) += du.colwise().sum();
    return du;
  }

 private:
  Index H_;
  std::vector<Param<Scalar>> p_;  // dt_bias, A_log
  RowMatrix<Scalar> pre_, g_;             // cached u + dt_bias and g
};

}  // namespace

template <class Scalar>
RowMatrix<Scalar> mamba2_dt_bias_init(Index H, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  RowMatrix<Scalar> bias(1, H);
  for (Index h = 0; h < H; ++h) {
    const double dt0 = std::max(1e-4, std::exp(std::log(1e-3) + u01(rng) * (std::log(0.1) - std::log(1e-3))));
    bias(0, h) = softplus_inverse(Scalar(dt0));
  }
  return bias;
}

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_mamba2(const DecayOptions& opt) {
  return std::make_unique<Mamba2Decay<Scalar>>(opt);
}

template RowMatrix<float> mamba2_dt_bias_init<float>(Index, std::mt19937_64&);
template RowMatrix<double> mamba2_dt_bias_init<double>(Index, std::mt19937_64&);
template std::unique_ptr<Decay<float>> make_mamba2<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_mamba2<double>(const DecayOptions&);

}  // namespace loglinear::decay
