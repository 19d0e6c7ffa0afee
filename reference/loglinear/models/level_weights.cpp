// Lambda parameterisations (SPEC.md §7) with their handwritten backward (§7.2's formulas).
// The MLP works on the [N*H, L] view of dl: one row per token and head.
#include <loglinear/models/layers.hpp>
#include <loglinear/models/level_weights.hpp>

#include <stdexcept>

namespace loglinear::models {

LambdaMode parse_lambda_mode(const std::string& name) {
  if (name == "fixed") return LambdaMode::fixed;
  if (name == "constant") return LambdaMode::constant;
  if (name == "mlp_softplus") return LambdaMode::mlp_softplus;
  if (name == "mlp_softmax") return LambdaMode::mlp_softmax;
  throw std::invalid_argument(
      "lambda: expected one of fixed, constant, mlp_softplus, mlp_softmax, got \"" + name + "\"");
}

std::string lambda_mode_name(LambdaMode mode) {
  switch (mode) {
    case LambdaMode::fixed: return "fixed";
    case LambdaMode::constant: return "constant";
    case LambdaMode::mlp_softplus: return "mlp_softplus";
    case LambdaMode::mlp_softmax: return "mlp_softmax";
  }
  return "unknown";
}

template <class Scalar>
LevelWeights<Scalar>::LevelWeights(LambdaMode mode, Index H, Index L, Index hidden,
                                   std::mt19937_64& rng, const std::string& prefix)
    : mode_(mode), H_(H), L_(L), hidden_(hidden) {
  using M = RowMatrix<Scalar>;
  switch (mode) {
    case LambdaMode::fixed:
      p_.emplace_back(prefix + "Lp", M::Ones(H, L), false);
      break;
    case LambdaMode::constant:
      p_.emplace_back(prefix + "c", M::Constant(H, L, softplus_inverse(Scalar(1))), false);
      break;
    case LambdaMode::mlp_softplus:
    case LambdaMode::mlp_softmax: {
      if (hidden < 1) throw std::invalid_argument("mlp_hidden: expected >= 1, got " + std::to_string(hidden));
      // xavier_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
      const double a = std::sqrt(6.0 / double(L + hidden));
      std::uniform_real_distribution<double> u(-a, a);
      M W1(hidden, L);
      for (Index i = 0; i < W1.size(); ++i) W1.data()[i] = Scalar(u(rng));
      p_.emplace_back(prefix + "W1", W1);
      p_.emplace_back(prefix + "b1", M::Zero(1, hidden), false);
      p_.emplace_back(prefix + "W2", M::Zero(L, hidden));
      const Scalar b2 = mode == LambdaMode::mlp_softplus ? Scalar(0.54) : Scalar(0);
      p_.emplace_back(prefix + "b2", M::Constant(1, L, b2), false);
      break;
    }
  }
}

template <class Scalar>
std::vector<Param<Scalar>*> LevelWeights<Scalar>::params() {
  std::vector<Param<Scalar>*> out;
  for (auto& p : p_) out.push_back(&p);
  return out;
}

template <class Scalar>
RowMatrix<Scalar> LevelWeights<Scalar>::forward(const RowMatrix<Scalar>& dl) {
  const Index N = dl.rows();
  if (dl.cols() != H_ * L_) {
    throw std::invalid_argument("dl: expected " + std::to_string(H_ * L_) + " columns (H*L), got " +
                                std::to_string(dl.cols()));
  }
  // One row per (token, head): [N*H, L]. Row-major storage makes this a free reshape.
  dl_ = Eigen::Map<const RowMatrix<Scalar>>(dl.data(), N * H_, L_);
  switch (mode_) {
    case LambdaMode::fixed:
      pre_ = dl_;
      for (Index r = 0; r < N * H_; ++r) pre_.row(r) = pre_.row(r).cwiseProduct(p_[0].value.row(r % H_));
      break;
    case LambdaMode::constant:
      pre_.resize(N * H_, L_);
      for (Index r = 0; r < N * H_; ++r) pre_.row(r) = p_[0].value.row(r % H_);
      break;
    default:
      a_ = (dl_ * p_[0].value.transpose()).rowwise() + p_[1].value.row(0);
      hid_ = a_.unaryExpr([](Scalar x) { return gelu(x); });
      pre_ = (hid_ * p_[2].value.transpose()).rowwise() + p_[3].value.row(0);
  }
  if (mode_ == LambdaMode::mlp_softmax) {
    lam_.resize(N * H_, L_);
    for (Index r = 0; r < N * H_; ++r) {
      const auto e = (pre_.row(r).array() - pre_.row(r).maxCoeff()).exp().eval();
      lam_.row(r) = e / e.sum();
    }
  } else {
    lam_ = pre_.unaryExpr([](Scalar x) { return softplus(x); });
  }
  return Eigen::Map<const RowMatrix<Scalar>>(lam_.data(), N, H_ * L_);
}

template <class Scalar>
RowMatrix<Scalar> LevelWeights<Scalar>::backward(const RowMatrix<Scalar>& dlam_in) {
  const Index N = dlam_in.rows();
  const Eigen::Map<const RowMatrix<Scalar>> dlam(dlam_in.data(), N * H_, L_);
  // d(pre): softplus' = sigmoid; softmax: lam ⊙ (dlam - <dlam, lam>).
  RowMatrix<Scalar> dpre(N * H_, L_);
  if (mode_ == LambdaMode::mlp_softmax) {
    for (Index r = 0; r < N * H_; ++r)
      dpre.row(r) = lam_.row(r).cwiseProduct((dlam.row(r).array() - dlam.row(r).dot(lam_.row(r))).matrix());
  } else {
    dpre = dlam.cwiseProduct(pre_.unaryExpr([](Scalar x) { return sigmoid(x); }));
  }
  RowMatrix<Scalar> ddl = RowMatrix<Scalar>::Zero(N * H_, L_);
  switch (mode_) {
    case LambdaMode::fixed:  // pre = Lp ⊙ dl
      for (Index r = 0; r < N * H_; ++r) {
        p_[0].grad.row(r % H_) += dpre.row(r).cwiseProduct(dl_.row(r));
        ddl.row(r) = dpre.row(r).cwiseProduct(p_[0].value.row(r % H_));
      }
      break;
    case LambdaMode::constant:  // pre = c, no input dependence
      for (Index r = 0; r < N * H_; ++r) p_[0].grad.row(r % H_) += dpre.row(r);
      break;
    default: {  // pre = W2 hid + b2, hid = GELU(a), a = W1 dl + b1
      p_[2].grad.noalias() += dpre.transpose() * hid_;
      p_[3].grad.row(0) += dpre.colwise().sum();
      const RowMatrix<Scalar> da =
          (dpre * p_[2].value).cwiseProduct(a_.unaryExpr([](Scalar x) { return gelu_grad(x); }));
      p_[0].grad.noalias() += da.transpose() * dl_;
      p_[1].grad.row(0) += da.colwise().sum();
      ddl.noalias() = da * p_[0].value;
    }
  }
  return Eigen::Map<const RowMatrix<Scalar>>(ddl.data(), N, H_ * L_);
}

template class LevelWeights<float>;
template class LevelWeights<double>;

}  // namespace loglinear::models
