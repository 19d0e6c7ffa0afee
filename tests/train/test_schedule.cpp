// train/schedule (SPEC.md §9): the warm-up + cosine learning rate at named steps, against the
// closed form written in the test.
#include <loglinear/train/schedule.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cmath>

using namespace loglinear::train;

TEST_CASE("warmup_cosine: linear warm-up to the peak, cosine to peak*final_fraction, then flat",
          "[optim][schedule][property]") {
  const long warmup = 10, total = 110;
  const double peak = 1e-3, ff = 0.1;
  auto lr = [&](long step) { return warmup_cosine(step, warmup, total, peak, ff); };
  // Warm-up (0-based steps): lr = peak (step + 1) / warmup, reaching the peak on the last warm-up step.
  CHECK(std::abs(lr(0) - peak / 10) <= 1e-18);
  CHECK(std::abs(lr(4) - peak * 5 / 10) <= 1e-18);
  CHECK(std::abs(lr(9) - peak) <= 1e-18);
  // Cosine: lr = peak (ff + (1 - ff) (1 + cos(pi p)) / 2) with p = (step - warmup) / (total - warmup).
  CHECK(std::abs(lr(10) - peak) <= 1e-18);                                           // p = 0
  CHECK(std::abs(lr(35) - peak * (ff + (1 - ff) * (1 + std::sqrt(0.5)) / 2)) <= 1e-18);  // p = 1/4
  CHECK(std::abs(lr(60) - peak * (ff + (1 - ff) / 2)) <= 1e-18);                     // p = 1/2, the midpoint
  CHECK(std::abs(lr(85) - peak * (ff + (1 - ff) * (1 - std::sqrt(0.5)) / 2)) <= 1e-18);  // p = 3/4
  CHECK(std::abs(lr(110) - peak * ff) <= 1e-18);                                      // p = 1, the end
  CHECK(std::abs(lr(500) - peak * ff) <= 1e-18);                                      // past the end: flat
  // (1e-18 on values ~1e-3: a few roundings; cos(pi/4) = sqrt(1/2) to the last bit or so.)
  for (long s = 1; s < warmup; ++s) CHECK(lr(s) > lr(s - 1));
  for (long s = warmup + 1; s <= total; ++s) CHECK(lr(s) <= lr(s - 1));
}

TEST_CASE("warmup_cosine: warmup 0 and final_fraction 1 give the constant rate of the sources' Adam runs",
          "[optim][schedule][property]") {
  for (long s : {0L, 1L, 50L, 99L, 100L, 1000L}) {
    CAPTURE(s);
    CHECK(warmup_cosine(s, 0, 100, 1e-3, 1.0) == 1e-3);
  }
  // warmup 0, final_fraction 0: the cosine starts at the peak at step 0 and ends at 0.
  CHECK(warmup_cosine(0, 0, 100, 1e-3, 0.0) == 1e-3);
  CHECK(std::abs(warmup_cosine(100, 0, 100, 1e-3, 0.0)) <= 1e-19);
}
