// Global gradient-norm clipping (clip.hpp).
#include <loglinear/train/clip.hpp>

#include <cmath>

namespace loglinear::train {

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

template double clip_grad_norm<float>(const std::vector<Param<float>*>&, double);
template double clip_grad_norm<double>(const std::vector<Param<double>*>&, double);

}  // namespace loglinear::train
