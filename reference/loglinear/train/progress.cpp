// Progress bar (progress.hpp).
#include <loglinear/train/progress.hpp>

#include <cstdio>
#include <unistd.h>

namespace loglinear::train {

Progress::Progress(long total, bool enabled, long every)
    : total_(total), every_(every), enabled_(enabled), tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(long step, const std::string& message) {
  if (!enabled_) return;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = step > 0 ? secs / double(step) * double(total_ - step) : 0;
  if (tty_) {
    const int width = 30, filled = int(double(width) * double(step) / double(total_));
    std::fprintf(stderr, "\r[%s%s] %ld/%ld %s | %.0fs, eta %.0fs   ",
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), step,
                 total_, message.c_str(), secs, eta);
  } else if (step % every_ == 0 || step == total_) {
    std::fprintf(stderr, "step %ld/%ld %s | %.0fs, eta %.0fs\n", step, total_, message.c_str(), secs, eta);
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_ && tty_) std::fprintf(stderr, "\n");
}

}  // namespace loglinear::train
