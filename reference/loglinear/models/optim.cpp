// Adam(W), clipping and the learning-rate schedule (optim.hpp).
#include <loglinear/models/optim.hpp>

#include <cmath>

namespace loglinear::models {

template <class Scalar>
Adam<Scalar>::Adam(std::vector<Param<Scalar>*> params, double beta1, double beta2, double eps,
                   double weight_decay)
    : params_(std::move(params)), b1_(beta1), b2_(beta2), eps_(eps), wd_(weight_decay) {
  for (auto* p : params_) {
    m_.push_back(RowMatrix<Scalar>::Zero(p->value.rows(), p->value.cols()));
    v_.push_back(RowMatrix<Scalar>::Zero(p->value.rows(), p->value.cols()));
  }
}

template <class Scalar>
void Adam<Scalar>::step(double lr) {
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

template <class Scalar>
double clip_grad_norm(const std::vector<Param<Scalar>*>& params, double max_norm) {
  double sq = 0;
  for (auto* p : params) sq += double(p->grad.squaredNorm());
  const double norm = std::sqrt(sq);
  if (norm > max_norm) {
    const Scalar scale = Scalar(max_norm / (norm + 1e-6));
    for (auto* p : params) p->grad *= scale;
  }
  return norm;
}

double warmup_cosine(long step, long warmup, long total, double peak, double final_fraction) {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  if (total <= warmup) return peak;
  const double progress = std::min(1.0, double(step - warmup) / double(total - warmup));
  const double cosine = 0.5 * (1 + std::cos(M_PI * progress));
  return peak * (final_fraction + (1 - final_fraction) * cosine);
}

template class Adam<float>;
template class Adam<double>;
template double clip_grad_norm<float>(const std::vector<Param<float>*>&, double);
template double clip_grad_norm<double>(const std::vector<Param<double>*>&, double);

}  // namespace loglinear::models
