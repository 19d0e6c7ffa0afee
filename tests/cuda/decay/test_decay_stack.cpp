// GPU twin of decay/decay_stack (cuda/decay/decay_stack.hpp): for every key, the stack built from
// a CPU stack with perturbed parameters (hgrn2's Gamma [layers, H] included) runs a model step as
// a model does (forward(), every layer's forward, the layers' backward in reverse, backward())
// and agrees with the CPU stack in float32: each layer's g, du and parameter gradients, hgrn2's
// per-layer lower-bound gradients and the shared Gamma gradient across layers; and a layer index
// out of range names the argument. Tolerance: kTwinTolerance (tests/support/cuda_twin.hpp).
#include <loglinear/cuda/decay/decay_stack.hpp>
#include <loglinear/decay/decay_stack.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::DeviceParam;
using loglinear::cuda::to_device;

namespace {

// Moves every CPU parameter away from its initial value (Gamma of ones gives an even softmax) and
// gives every gradient a random start, on both twins.
void perturb(const std::vector<Param<float>*>& cpu, const std::vector<DeviceParam*>& gpu, Context& ctx,
             std::mt19937_64& rng) {
  perturb_twins(cpu, gpu, ctx, rng, 0.7);
}

}  // namespace

TEST_CASE("cuda decay_stack: every key's layers and hgrn2's shared Gamma equal the CPU twin", "[cuda][gpu][decay]") {
  REQUIRE_GPU();
  const std::string key = GENERATE(from_range(decay::decay_names()));
  const Index layers = 3, H = 3, B = 2, T = 9;  // tnl needs H >= 2 and layers >= 2
  CAPTURE(key);
  std::mt19937_64 rng(std::hash<std::string>{}(key));
  decay::DecayOptions opt;
  opt.heads = H;
  opt.seed = 5;
  auto cpu = decay::make_decay_stack<float>(key, opt, layers);
  Context ctx;
  auto gpu = cuda::decay::make_decay_stack(*cpu, ctx);
  REQUIRE(gpu->size() == layers);
  CHECK(gpu->name() == key);
  CHECK(gpu->data_dependent() == cpu->data_dependent());
  perturb(cpu->shared_params(), gpu->shared_params(), ctx, rng);
  for (Index i = 0; i < layers; ++i) perturb(cpu->layer(i).params(), gpu->layer(i).params(), ctx, rng);

  cpu->forward();
  gpu->forward(ctx);
  for (Index i = 0; i < layers; ++i) {
    CAPTURE(i);
    const RowMatrix<float> u = random_matrix(B * T, H, rng, 2.0);
    DeviceMatrix g;
    gpu->layer(i).forward(ctx, to_device(u), B, g);
    check_twin("g", ctx, g, cpu->layer(i).forward(u, B));
  }
  for (Index i = layers - 1; i >= 0; --i) {
    CAPTURE(i);
    const RowMatrix<float> dg = random_matrix(B * T, H, rng);
    DeviceMatrix du;
    gpu->layer(i).backward(ctx, to_device(dg), du);
    check_twin("du", ctx, du, cpu->layer(i).backward(dg));
    const auto cps = cpu->layer(i).params();
    const auto gps = gpu->layer(i).params();
    for (std::size_t j = 0; j < cps.size(); ++j) check_twin("d" + cps[j]->name, ctx, gps[j]->grad, cps[j]->grad);
    if (key == "hgrn2")
      check_twin("dlb", ctx, dynamic_cast<cuda::decay::Hgrn2Decay&>(gpu->layer(i)).lower_bound_grad(),
                 dynamic_cast<decay::Hgrn2Decay<float>&>(cpu->layer(i)).lower_bound_grad());
  }
  cpu->backward();
  gpu->backward(ctx);
  const auto cps = cpu->shared_params();
  const auto gps = gpu->shared_params();
  REQUIRE(cps.size() == (key == "hgrn2" ? 1u : 0u));
  for (std::size_t j = 0; j < cps.size(); ++j) check_twin("d" + cps[j]->name, ctx, gps[j]->grad, cps[j]->grad);
}

TEST_CASE("cuda decay_stack: a layer index out of range names the argument", "[cuda][gpu][decay]") {
  REQUIRE_GPU();
  decay::DecayOptions opt;
  opt.heads = 2;
  auto cpu = decay::make_decay_stack<float>("hgrn2", opt, 2);
  Context ctx;
  auto gpu = cuda::decay::make_decay_stack(*cpu, ctx);
  CHECK_THROWS_WITH(gpu->layer(2), ContainsSubstring("layer: expected"));
  CHECK_THROWS_WITH(gpu->layer(-1), ContainsSubstring("layer: expected"));
}
