// The lambda MLP's hidden layer, forward and backward (mlp.hpp).
#include <loglinear/core/activations.hpp>
#include <loglinear/core/init.hpp>
#include <loglinear/lambda/mlp.hpp>

#include <stdexcept>

namespace loglinear::lambda::detail {
namespace {
Index checked_hidden(Index hidden) {
  if (hidden < 1) throw std::invalid_argument("mlp_hidden: expected >= 1, got " + std::to_string(hidden));
  return hidden;
}
}  // namespace

template <class Scalar>
MlpLevelWeights<Scalar>::MlpLevelWeights(const LevelWeightsOptions& o, Scalar b2, std::mt19937_64& rng)
    : LevelWeights<Scalar>(o.heads, o.levels),
      W1_(o.prefix + "W1", init_xavier_uniform<Scalar>(checked_hidden(o.hidden), o.levels, rng)),
      b1_(o.prefix + "b1", RowMatrix<Scalar>::Zero(1, o.hidden), false),
      W2_(o.prefix + "W2", RowMatrix<Scalar>::Zero(o.levels, o.hidden)),
      b2_(o.prefix + "b2", RowMatrix<Scalar>::Constant(1, o.levels, b2), false) {}

template <class Scalar>
RowMatrix<Scalar> MlpLevelWeights<Scalar>::forward_rows(const RowMatrix<Scalar>& dl) {
  dl_ = dl;
  a_ = (dl * W1_.value.transpose()).rowwise() + b1_.value.row(0);
  hid_ = a_.unaryExpr([](Scalar x) { return gelu(x); });
  return output((hid_ * W2_.value.transpose()).rowwise() + b2_.value.row(0));
}

template <class Scalar>
RowMatrix<Scalar> MlpLevelWeights<Scalar>::backward_rows(const RowMatrix<Scalar>& dlam) {
  const RowMatrix<Scalar> dpre = output_backward(dlam);
  // forward: pre = W2 hid + b2.
  W2_.grad.noalias() += dpre.transpose() * hid_;
  b2_.grad.row(0) += dpre.colwise().sum();
  // forward: hid = GELU(a), a = W1 dl + b1.
  const RowMatrix<Scalar> da = (dpre * W2_.value).cwiseProduct(a_.unaryExpr([](Scalar x) { return gelu_grad(x); }));
  W1_.grad.noalias() += da.transpose() * dl_;
  b1_.grad.row(0) += da.colwise().sum();
  return da * W1_.value;
}

template class MlpLevelWeights<float>;
template class MlpLevelWeights<double>;

}  // namespace loglinear::lambda::detail
