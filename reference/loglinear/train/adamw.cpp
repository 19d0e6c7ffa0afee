// Adam(W) update (adamw.hpp).
#include <loglinear/train/adamw.hpp>

#include <cmath>

namespace loglinear::train {

template <class Scalar>
AdamW<Scalar>::AdamW(std::vector<Param<Scalar>*> params, double beta1, double beta2, double eps,
                   double weight_decay)
    : params_(std::move(params)), b1_(beta1), b2_(beta2), eps_(eps), wd_(weight_decay) {
  for (auto* p : params_) {
    m_.push_back(RowMatrix<Scalar>::Zero(p->value.rows(), p->value.cols()));
    v_.push_back(RowMatrix<Scalar>::Zero(p->value.rows(), p->value.cols()));
  }
}

template <class Scalar>
void AdamW<Scalar>::step(double lr) {
  ++t_;
  const double c1 = 1 - std::pow(b1_, double(t_)), c2 = 1 - std::pow(b2_, double(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = *params_[i];
    m_[i] = Scalar(b1_) * m_[i] + Scalar(1 - b1_) * p.grad;
    v_[i] = Scalar(b2_) * v_[i] + Scalar(1 - b2_) * p.grad.cwiseAbs2();
    // Decoupled weight decay (AdamW) before the Adam step, as torch.optim.AdamW.
    if (wd_ > 0 && p.weight_decay) p.value *= Scalar(1 - lr * wd_);
    p.value.array() -= Scalar(lr) * (m_[i].array() / Scalar(c1)) /
                       ((v_[i].array() / Scalar(c2)).sqrt() + Scalar(eps_));
  }
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace loglinear::train
