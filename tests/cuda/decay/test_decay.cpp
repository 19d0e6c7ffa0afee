// GPU twins of decay/ (cuda/decay/decay.hpp): every decay, built from its CPU twin with perturbed
// parameters and non-default options (tau, p, layer: the constants must come from the CPU twin),
// against that CPU twin in float32: g, du, every parameter gradient (added onto random starting
// values) and hgrn2's lower-bound gradient, over two rounds of different B (lightnet's scans per
// sequence; caches resized, gradients accumulated), on odd sizes; hgrn2's table functions; and
// the errors name the argument. Tolerance: kTwinTolerance (tests/support/cuda_twin.hpp): the
// column sums here run over <= 6 * 129 rows, and lightnet's scans are the CPU's sequential
// recurrences in the same order, differing only by libm ulps that the decay a < 1 damps.
#include <loglinear/cuda/decay/decay.hpp>
#include <loglinear/decay/decay.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <tuple>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Catch::Generators::table;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::DeviceParam;
using loglinear::cuda::to_device;

namespace {

// Moves every CPU parameter away from its initial value and gives every gradient a random start,
// on both twins.
void perturb(const std::vector<Param<float>*>& cpu, const std::vector<DeviceParam*>& gpu, Context& ctx,
             std::mt19937_64& rng) {
  perturb_twins(cpu, gpu, ctx, rng, 0.5);
}

// A lower bound [1, H] in [0, 0.9) with an exact 0 at head 0 (the forward's lb = 0 branch).
RowMatrix<float> random_lower_bound(Index H, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(0.f, 0.9f);
  RowMatrix<float> lb(1, H);
  for (Index h = 0; h < H; ++h) lb(0, h) = h == 0 ? 0.f : u(rng);
  return lb;
}

}  // namespace

TEST_CASE("cuda decay: every decay's forward and backward equal the CPU twin", "[cuda][gpu][decay]") {
  REQUIRE_GPU();
  const std::string key = GENERATE(from_range(decay::decay_names()));
  const auto [B, T, H] = GENERATE(table<Index, Index, Index>({{1, 1, 2}, {2, 7, 3}, {3, 129, 4}, {5, 64, 8}}));
  CAPTURE(key, B, T, H);
  std::mt19937_64 rng(std::uint64_t(B * 100003 + T * 101 + H) ^ std::hash<std::string>{}(key));
  decay::DecayOptions opt;
  opt.heads = H;
  opt.layer = 1;
  opt.num_layers = 3;
  opt.tau = 5.0;  // not the default 16: the twin must read it from the CPU twin
  opt.p = 0.9;
  opt.seed = 7;
  opt.prefix = "layers.1.";
  auto cpu = decay::make_decay<float>(key, opt);
  Context ctx;
  auto gpu = cuda::decay::make_decay(*cpu, ctx);
  CHECK(gpu->name() == key);
  CHECK(gpu->data_dependent() == cpu->data_dependent());
  CHECK(gpu->heads() == H);
  perturb(cpu->params(), gpu->params(), ctx, rng);
  auto* cpu_hg = dynamic_cast<decay::Hgrn2Decay<float>*>(cpu.get());
  auto* gpu_hg = dynamic_cast<cuda::decay::Hgrn2Decay*>(gpu.get());
  REQUIRE((cpu_hg != nullptr) == (key == "hgrn2"));
  REQUIRE((gpu_hg != nullptr) == (key == "hgrn2"));
  if (gpu_hg) {
    const RowMatrix<float> lb = random_lower_bound(H, rng);
    cpu_hg->set_lower_bound(lb);
    gpu_hg->set_lower_bound(ctx, lb);
  }

  for (const Index b : {B, B + 1}) {  // a second round: caches resized, gradients accumulated
    CAPTURE(b);
    const RowMatrix<float> u = random_matrix(b * T, H, rng, 2.0), dg = random_matrix(b * T, H, rng);
    DeviceMatrix g, du;
    gpu->forward(ctx, to_device(u), b, g);
    check_twin("g", ctx, g, cpu->forward(u, b));
    gpu->backward(ctx, to_device(dg), du);
    check_twin("du", ctx, du, cpu->backward(dg));
    for (std::size_t i = 0; i < cpu->params().size(); ++i)
      check_twin("d" + cpu->params()[i]->name, ctx, gpu->params()[i]->grad, cpu->params()[i]->grad);
    if (gpu_hg) check_twin("dlb", ctx, gpu_hg->lower_bound_grad(), cpu_hg->lower_bound_grad());
  }
}

TEST_CASE("cuda decay: hgrn2_lower_bounds and its backward equal the CPU twin", "[cuda][gpu][decay]") {
  REQUIRE_GPU();
  const auto [layers, H] = GENERATE(table<Index, Index>({{1, 1}, {2, 3}, {5, 4}, {12, 17}}));
  CAPTURE(layers, H);
  std::mt19937_64 rng(std::uint64_t(layers * 100 + H));
  Context ctx;
  const RowMatrix<float> Gamma = random_matrix(layers, H, rng, 2.0), dlb = random_matrix(layers, H, rng);
  RowMatrix<float> dGamma = random_matrix(layers, H, rng);
  const DeviceMatrix Gd = to_device(Gamma);
  DeviceMatrix lb, dGd = to_device(dGamma);
  cuda::decay::hgrn2_lower_bounds(ctx, Gd, lb);
  check_twin("lb", ctx, lb, decay::hgrn2_lower_bounds(Gamma));
  cuda::decay::hgrn2_lower_bounds_backward(ctx, Gd, to_device(dlb), dGd);
  decay::hgrn2_lower_bounds_backward(Gamma, dlb, dGamma);
  check_twin("dGamma", ctx, dGd, dGamma);
}

TEST_CASE("cuda decay: shape mismatches and a mismatched CPU twin name the argument", "[cuda][gpu][decay]") {
  REQUIRE_GPU();
  std::mt19937_64 rng(2);
  decay::DecayOptions opt;
  opt.heads = 3;
  auto cpu = decay::make_decay<float>("mamba2", opt);
  Context ctx;
  auto gpu = cuda::decay::make_decay(*cpu, ctx);
  DeviceMatrix g, du;
  CHECK_THROWS_WITH(gpu->forward(ctx, to_device(random_matrix(6, 2, rng)), 2, g), ContainsSubstring("u: expected"));
  CHECK_THROWS_WITH(gpu->forward(ctx, to_device(random_matrix(7, 3, rng)), 2, g), ContainsSubstring("u: expected"));
  gpu->forward(ctx, to_device(random_matrix(6, 3, rng)), 2, g);
  CHECK_THROWS_WITH(gpu->backward(ctx, to_device(random_matrix(5, 3, rng)), du), ContainsSubstring("dg: expected"));
  CHECK_THROWS_WITH(cuda::decay::make_gla(*cpu, ctx), ContainsSubstring("cpu: expected"));

  auto cpu_hg = decay::make_decay<float>("hgrn2", opt);
  auto gpu_hg = cuda::decay::make_decay(*cpu_hg, ctx);
  auto& hg = dynamic_cast<cuda::decay::Hgrn2Decay&>(*gpu_hg);
  CHECK_THROWS_WITH(hg.set_lower_bound(ctx, RowMatrix<float>::Constant(1, 3, 1.f)), ContainsSubstring("lb: expected"));
  CHECK_THROWS_WITH(hg.set_lower_bound(ctx, RowMatrix<float>::Zero(1, 2)), ContainsSubstring("lb: expected"));
  const DeviceMatrix table = to_device(RowMatrix<float>::Zero(2, 3));
  CHECK_THROWS_WITH(hg.set_lower_bound(ctx, table, 2), ContainsSubstring("row: expected"));
  CHECK_THROWS_WITH(hg.set_lower_bound(ctx, to_device(RowMatrix<float>::Zero(2, 4)), 0), ContainsSubstring("lbs: expected"));
  DeviceMatrix lb;
  CHECK_THROWS_WITH(cuda::decay::hgrn2_lower_bounds(ctx, DeviceMatrix(0, 3), lb), ContainsSubstring("Gamma: expected"));
}
