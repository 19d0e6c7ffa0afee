// hgrn2 decay (SPEC.md §14.2, HGRN2 via xmixers): a = lb + (1 - lb) sigmoid(u) with a per-layer,
// per-head lower bound lb from a model-level softmax table (hgrn2_lower_bounds). O(N H).
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>
#include <loglinear/decay/decay_stack.hpp>

#include <cmath>
#include <stdexcept>

namespace loglinear::decay {
namespace {

template <class Scalar>
class Hgrn2Impl final : public Hgrn2Decay<Scalar> {
 public:
  explicit Hgrn2Impl(const DecayOptions& opt)
      : Hgrn2Decay<Scalar>(opt), H_(opt.heads), lb_(RowMatrix<Scalar>::Zero(1, opt.heads)),
        dlb_(RowMatrix<Scalar>::Zero(1, opt.heads)) {}
  std::string name() const override { return "hgrn2"; }

  void set_lower_bound(const RowMatrix<Scalar>& lb) override {
    detail::check_decay_shape("lb", lb, H_, 1);
    for (Index h = 0; h < H_; ++h)
      if (!(lb(0, h) >= 0 && lb(0, h) < 1))
        throw std::invalid_argument("lb: expected every entry in [0, 1), got " + std::to_string(double(lb(0, h))) +
                                    " at head " + std::to_string(h));
    lb_ = lb;
    dlb_.setZero();
  }
  const RowMatrix<Scalar>& lower_bound_grad() const override { return dlb_; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    u_ = u;
    g_.resize(u.rows(), H_);
    // g = logaddexp(log lb, log(1 - lb) + logsigmoid(u)): stays finite when lb = 0 and u << 0.
    for (Index n = 0; n < u.rows(); ++n)
      for (Index h = 0; h < H_; ++h) {
        const Scalar hi = std::log1p(-lb_(0, h)) + log_sigmoid(u(n, h));
        if (lb_(0, h) == 0) {
          g_(n, h) = hi;
        } else {
          const Scalar lo = std::log(lb_(0, h));
          const Scalar m = std::max(lo, hi);
          g_(n, h) = m + std::log1p(std::exp(-std::abs(lo - hi)));
        }
      }
    return g_;
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    RowMatrix<Scalar> du(dg.rows(), H_);
    for (Index n = 0; n < dg.rows(); ++n)
      for (Index h = 0; h < H_; ++h) {
        // forward: a = lb + (1 - lb) sigma(u), g = log a. dg/du = (1 - lb) sigma (1 - sigma) / a,
        // with (1 - lb) sigma / a = exp(log(1 - lb) + logsigmoid(u) - g) <= 1 (no 0/0 as a -> 0);
        // dg/dlb = (1 - sigma) / a.
        const Scalar one_minus_sigma = sigmoid(-u_(n, h));
        const Scalar share = std::exp(std::log1p(-lb_(0, h)) + log_sigmoid(u_(n, h)) - g_(n, h));
        du(n, h) = dg(n, h) * share * one_minus_sigma;
        dlb_(0, h) += dg(n, h) * one_minus_sigma * std::exp(-g_(n, h));
      }
    return du;
  }

 private:
  Index H_;
  RowMatrix<Scalar> lb_, dlb_;  // [1, H]
  RowMatrix<Scalar> u_, g_;     // cached input and output
};

// Every layer's hgrn2 decay and the table Gamma [layers, H] they share (init 1, so lb_i = i /
// layers). forward(): lb = hgrn2_lower_bounds(Gamma), row i to layer i. backward(): the layers'
// dlb rows through hgrn2_lower_bounds_backward into dGamma.
template <class Scalar>
class Hgrn2Stack final : public DecayStack<Scalar> {
 public:
  Hgrn2Stack(std::vector<std::unique_ptr<Decay<Scalar>>> layers, std::vector<Hgrn2Impl<Scalar>*> impl,
             const DecayOptions& opt)
      : DecayStack<Scalar>("hgrn2", std::move(layers)), impl_(std::move(impl)),
        Gamma_(opt.prefix + "hgrn2.Gamma", RowMatrix<Scalar>::Ones(Index(impl_.size()), opt.heads), false) {}
  std::vector<Param<Scalar>*> shared_params() override { return {&Gamma_}; }
  void forward() override {
    const RowMatrix<Scalar> lb = hgrn2_lower_bounds(Gamma_.value);
    for (size_t i = 0; i < impl_.size(); ++i) impl_[i]->set_lower_bound(lb.row(Index(i)));
  }
  void backward() override {
    // forward: lb = hgrn2_lower_bounds(Gamma), row i the lower bound of layer i.
    RowMatrix<Scalar> dlb(Gamma_.value.rows(), Gamma_.value.cols());
    for (size_t i = 0; i < impl_.size(); ++i) dlb.row(Index(i)) = impl_[i]->lower_bound_grad();
    hgrn2_lower_bounds_backward(Gamma_.value, dlb, Gamma_.grad);
  }

 private:
  std::vector<Hgrn2Impl<Scalar>*> impl_;  // the same objects as layers_, seen as hgrn2
  Param<Scalar> Gamma_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<DecayStack<Scalar>> make_hgrn2_stack(const DecayOptions& opt, Index num_layers) {
  if (opt.heads < 1) throw std::invalid_argument("heads: expected >= 1, got " + std::to_string(opt.heads));
  std::vector<std::unique_ptr<Decay<Scalar>>> layers;
  std::vector<Hgrn2Impl<Scalar>*> impl;
  for (Index i = 0; i < num_layers; ++i) {
    auto d = std::make_unique<Hgrn2Impl<Scalar>>(opt);
    impl.push_back(d.get());
    layers.push_back(std::move(d));
  }
  return std::make_unique<Hgrn2Stack<Scalar>>(std::move(layers), std::move(impl), opt);
}

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_hgrn2(const DecayOptions& opt) {
  return std::make_unique<Hgrn2Impl<Scalar>>(opt);
}

template <class Scalar>
RowMatrix<Scalar> hgrn2_lower_bounds(const RowMatrix<Scalar>& Gamma) {
  if (Gamma.rows() < 1 || Gamma.cols() < 1)
    throw std::invalid_argument("Gamma: expected shape [L, H] with L, H >= 1, got [" +
                                std::to_string(Gamma.rows()) + "," + std::to_string(Gamma.cols()) + "]");
  // p = softmax over layers per head (max-shifted); lb_l = cumsum_l(p) - p_0.
  RowMatrix<Scalar> p = (Gamma.rowwise() - Gamma.colwise().maxCoeff()).array().exp().matrix();
  p = p.array().rowwise() / p.colwise().sum().array();
  RowMatrix<Scalar> lb = RowMatrix<Scalar>::Zero(Gamma.rows(), Gamma.cols());
  for (Index l = 1; l < Gamma.rows(); ++l) lb.row(l) = lb.row(l - 1) + p.row(l);
  return lb;
}

template <class Scalar>
void hgrn2_lower_bounds_backward(const RowMatrix<Scalar>& Gamma, const RowMatrix<Scalar>& dlb,
                                 RowMatrix<Scalar>& dGamma) {
  if (dlb.rows() != Gamma.rows() || dlb.cols() != Gamma.cols())
    throw std::invalid_argument("dlb: expected the shape of Gamma [" + std::to_string(Gamma.rows()) + "," +
                                std::to_string(Gamma.cols()) + "], got [" + std::to_string(dlb.rows()) + "," +
                                std::to_string(dlb.cols()) + "]");
  if (dGamma.rows() != Gamma.rows() || dGamma.cols() != Gamma.cols())
    throw std::invalid_argument("dGamma: expected the shape of Gamma [" + std::to_string(Gamma.rows()) + "," +
                                std::to_string(Gamma.cols()) + "]");
  const RowMatrix<Scalar> lb = hgrn2_lower_bounds(Gamma);
  RowMatrix<Scalar> p = (Gamma.rowwise() - Gamma.colwise().maxCoeff()).array().exp().matrix();
  p = p.array().rowwise() / p.colwise().sum().array();
  const Index L = Gamma.rows();
  // dlb_l/dGamma_m = p_m ([1 <= m <= l] - lb_l): the indicator term is a reverse cumsum of dlb
  // from row m on; the second term is sum_l dlb_l lb_l, the same for every m.
  for (Index h = 0; h < Gamma.cols(); ++h) {
    Scalar dot = 0, tail = 0;
    for (Index l = 0; l < L; ++l) dot += dlb(l, h) * lb(l, h);
    for (Index m = L - 1; m >= 0; --m) {
      tail += dlb(m, h);
      dGamma(m, h) += p(m, h) * ((m >= 1 ? tail : Scalar(0)) - dot);
    }
  }
}

template std::unique_ptr<DecayStack<float>> make_hgrn2_stack<float>(const DecayOptions&, Index);
template std::unique_ptr<DecayStack<double>> make_hgrn2_stack<double>(const DecayOptions&, Index);
template std::unique_ptr<Decay<float>> make_hgrn2<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_hgrn2<double>(const DecayOptions&);
template RowMatrix<float> hgrn2_lower_bounds<float>(const RowMatrix<float>&);
template RowMatrix<double> hgrn2_lower_bounds<double>(const RowMatrix<double>&);
template void hgrn2_lower_bounds_backward<float>(const RowMatrix<float>&, const RowMatrix<float>&, RowMatrix<float>&);
template void hgrn2_lower_bounds_backward<double>(const RowMatrix<double>&, const RowMatrix<double>&,
                                                  RowMatrix<double>&);

}  // namespace loglinear::decay
