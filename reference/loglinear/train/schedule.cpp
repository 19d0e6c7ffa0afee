// Warm-up + cosine learning-rate schedule (schedule.hpp).
#include <loglinear/train/schedule.hpp>

#include <algorithm>
#include <cmath>

namespace loglinear::train {

double warmup_cosine(long step, long warmup, long total, double peak, double final_fraction) {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  if (total <= warmup) return peak;
  const double progress = std::min(1.0, double(step - warmup) / double(total - warmup));
  const double cosine = 0.5 * (1 + std::cos(M_PI * progress));
  return peak * (final_fraction + (1 - final_fraction) * cosine);
}

}  // namespace loglinear::train
