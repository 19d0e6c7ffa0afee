// The CPU optimiser (optimizer.hpp).
#include <loglinear/train/clip.hpp>
#include <loglinear/train/optimizer.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::train {

HostOptimizer::HostOptimizer(Model& model, double weight_decay)
    : params_(model.params()), adam_(params_, 0.9, 0.999, 1e-8, weight_decay) {}

void HostOptimizer::clip_grad_norm(double max_norm) { train::clip_grad_norm(params_, max_norm); }

namespace {
void check_which(int which) {
  if (which != 0 && which != 1)
    throw std::invalid_argument("which: expected 0 (first moments) or 1 (second moments), got " + std::to_string(which));
}
}  // namespace

std::vector<RowMatrix<float>> HostOptimizer::moments(int which) {
  check_which(which);
  return which == 0 ? adam_.first_moments() : adam_.second_moments();
}

void HostOptimizer::set_moments(int which, const std::vector<RowMatrix<float>>& values) {
  check_which(which);
  auto& dst = which == 0 ? adam_.first_moments() : adam_.second_moments();
  if (values.size() != dst.size())
    throw std::invalid_argument("moments: expected " + std::to_string(dst.size()) + " matrices, got " +
                                std::to_string(values.size()));
  for (size_t i = 0; i < dst.size(); ++i) {
    if (values[i].rows() != dst[i].rows() || values[i].cols() != dst[i].cols())
      throw std::invalid_argument("moments: entry " + std::to_string(i) + " (" + params_[i]->name + ") has the wrong shape");
    dst[i] = values[i];
  }
}

}  // namespace loglinear::train
