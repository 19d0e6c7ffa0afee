// GPU twins of train/clip.hpp and train/adamw.hpp against the CPU twins: the clipped gradients and
// the norm, with the norm above and below the threshold; 20 AdamW steps with and without weight
// decay (and a parameter excluded from it), the moments, and moments set from the host.
#include <loglinear/cuda/train/adamw.hpp>
#include <loglinear/cuda/train/clip.hpp>
#include <loglinear/train/adamw.hpp>
#include <loglinear/train/clip.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <deque>

using namespace loglinear;
using namespace loglinear::test;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceParam;

namespace {
// A few parameters of odd sizes (one bigger than a slice of the multi-tensor kernels), one
// excluded from weight decay, with random values and gradients.
std::deque<Param<float>> make_params(std::mt19937_64& rng) {
  std::deque<Param<float>> ps;
  ps.emplace_back("a", random_matrix(3, 5, rng));
  ps.emplace_back("b", random_matrix(1, 1, rng), false);
  ps.emplace_back("c", random_matrix(97, 131, rng));
  for (auto& p : ps) p.grad = random_matrix(p.value.rows(), p.value.cols(), rng);
  return ps;
}
std::vector<Param<float>*> ptrs(std::deque<Param<float>>& ps) {
  std::vector<Param<float>*> out;
  for (auto& p : ps) out.push_back(&p);
  return out;
}
}  // namespace

TEST_CASE("cuda train::clip_grad_norm equals the CPU twin", "[cuda][gpu][train]") {
  REQUIRE_GPU();
  const double max_norm = GENERATE(0.5, 1e9);  // clipping and not clipping
  CAPTURE(max_norm);
  std::mt19937_64 rng(11);
  Context ctx;
  auto host = make_params(rng);
  std::deque<DeviceParam> dev;
  std::vector<DeviceParam*> dptr;
  for (auto& p : host) {
    dev.emplace_back(p, ctx.stream());
    dev.back().grad.upload(p.grad, ctx.stream());
    dptr.push_back(&dev.back());
  }
  const double norm = cuda::train::clip_grad_norm(ctx, dptr, max_norm);
  const double norm_cpu = train::clip_grad_norm(ptrs(host), max_norm);
  CHECK(std::abs(norm - norm_cpu) <= 1e-6 * norm_cpu);
  for (size_t i = 0; i < host.size(); ++i) check_twin(host[i].name + ".grad", ctx, dev[i].grad, host[i].grad);
}

TEST_CASE("cuda train::AdamW: 20 steps equal the CPU twin", "[cuda][gpu][train]") {
  REQUIRE_GPU();
  const double wd = GENERATE(0.0, 0.1);
  CAPTURE(wd);
  std::mt19937_64 rng(12);
  Context ctx;
  auto host = make_params(rng);
  std::deque<DeviceParam> dev;
  std::vector<DeviceParam*> dptr;
  for (auto& p : host) {
    dev.emplace_back(p, ctx.stream());
    dptr.push_back(&dev.back());
  }
  train::AdamW<float> cpu(ptrs(host), 0.9, 0.999, 1e-8, wd);
  cuda::train::AdamW gpu(dptr, 0.9, 0.999, 1e-8, wd, ctx);
  for (int step = 0; step < 20; ++step) {
    for (size_t i = 0; i < host.size(); ++i) {
      host[i].grad = random_matrix(host[i].value.rows(), host[i].value.cols(), rng);
      dev[i].grad.upload(host[i].grad, ctx.stream());
    }
    const double lr = 1e-2 * (1.0 + step % 3);
    cpu.step(lr);
    gpu.step(ctx, lr);
  }
  CHECK(gpu.steps() == 20);
  // Float rounding of ~5 operations per step (and fused multiply-adds on the GPU) over 20 steps on
  // values of size ~1: ~1e-6, well inside the twin tolerance.
  for (size_t i = 0; i < host.size(); ++i) check_twin(host[i].name, ctx, dev[i].value, host[i].value);
  const auto m = gpu.moments(ctx, 0), v = gpu.moments(ctx, 1);
  for (size_t i = 0; i < host.size(); ++i) {
    const Comparison cm = compare("m " + host[i].name, m[i].data(), cpu.first_moments()[i].data(), m[i].size());
    const Comparison cv = compare("v " + host[i].name, v[i].data(), cpu.second_moments()[i].data(), v[i].size());
    INFO(cm.report() << "\n" << cv.report());
    CHECK(cm.max_rel <= kTwinTolerance);
    CHECK(cv.max_rel <= kTwinTolerance);
  }
  // Moments set from the host come back unchanged; a wrong count is refused.
  gpu.set_moments(ctx, 1, cpu.second_moments());
  const auto v2 = gpu.moments(ctx, 1);
  for (size_t i = 0; i < host.size(); ++i) CHECK(v2[i] == cpu.second_moments()[i]);
  CHECK_THROWS_WITH(gpu.set_moments(ctx, 0, {}), Catch::Matchers::ContainsSubstring("moments: expected 3 matrices"));
}
