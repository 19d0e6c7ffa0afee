// GPU twin of nn/cross_entropy.hpp: loss, dlogits and the count of right predictions against the
// CPU twin, with unscored rows (target -1), a batch with nothing scored, and vocab below and above
// one warp.
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/nn/cross_entropy.hpp>
#include <loglinear/nn/cross_entropy.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <tuple>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Generators::table;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::to_device;

TEST_CASE("cuda nn::cross_entropy: loss, gradient and hits equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, V, scored_every] = GENERATE(table<Index, Index, Index>({{1, 2, 1}, {9, 5, 2}, {8192, 128, 3}, {300, 256, 1}, {40, 7, 0}}));
  CAPTURE(N, V, scored_every);
  std::mt19937_64 rng(N + V);
  Context ctx;
  RowMatrix<float> logits = random_matrix(N, V, rng, 3.0);
  std::vector<std::int32_t> targets(static_cast<size_t>(N));
  Index scored = 0;
  for (Index n = 0; n < N; ++n) {
    const bool s = scored_every > 0 && n % scored_every == 0;
    targets[size_t(n)] = s ? std::int32_t(rng() % std::uint64_t(V)) : -1;
    scored += s;
  }
  // Make some argmaxes right, so that the hit count is not trivially 0.
  for (Index n = 0; n < N; n += 4)
    if (targets[size_t(n)] >= 0) logits(n, targets[size_t(n)]) += 20.f;
  RowMatrix<float> dl_cpu;
  Index right_cpu = 0;
  const double loss_cpu = nn::cross_entropy<float>(logits, targets.data(), &dl_cpu, &right_cpu);
  cuda::DeviceBuffer<std::int32_t> tg(targets.size());
  tg.upload(targets.data(), ctx.stream());
  DeviceMatrix dl;
  Index right = -1;
  const double loss = cuda::nn::cross_entropy(ctx, to_device(logits), tg.data(), scored, &dl, &right);
  CAPTURE(loss, loss_cpu, right, right_cpu);
  // The mean of float losses, summed in double on both sides: relative agreement ~1e-6.
  CHECK(std::abs(loss - loss_cpu) <= kTwinTolerance * std::max(1.0, std::abs(loss_cpu)));
  CHECK(right == right_cpu);
  check_twin("dlogits", ctx, dl, dl_cpu);
}

TEST_CASE("cuda nn::cross_entropy: a wrong scored count and targets out of range are refused", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  cuda::DeviceBuffer<std::int32_t> tg(3);
  CHECK_THROWS_WITH(cuda::nn::cross_entropy(ctx, DeviceMatrix(3, 4), tg.data(), 4, nullptr),
                    Catch::Matchers::ContainsSubstring("scored: expected 0 <= scored <= N = 3"));
  // The device counts what it was given: a wrong count or a target past the vocabulary is refused
  // (no read past the row).
  const std::vector<std::int32_t> t{0, -1, 2};
  tg.upload(t.data(), ctx.stream());
  const DeviceMatrix logits = cuda::to_device(RowMatrix<float>::Zero(3, 4));
  CHECK_THROWS_WITH(cuda::nn::cross_entropy(ctx, logits, tg.data(), 3, nullptr),
                    Catch::Matchers::ContainsSubstring("scored: expected the number of targets >= 0, 2, got 3"));
  const std::vector<std::int32_t> past{0, 4, 1};
  tg.upload(past.data(), ctx.stream());
  CHECK_THROWS_WITH(cuda::nn::cross_entropy(ctx, logits, tg.data(), 2, nullptr),
                    Catch::Matchers::ContainsSubstring("targets: expected -1 or ids in [0, 4)"));
}
