// GPU twins of lambda/ (cuda/lambda/lambda.hpp): every mode, built from its CPU twin with perturbed
// parameters, against that CPU twin in float32: lam, ddl and every parameter gradient (added onto
// random starting values, so that "ADDS" is checked), over two forward/backward rounds of
// different N (caches resized, gradients accumulated), on shapes with odd sizes; and the errors
// name the argument. Tolerance: kTwinTolerance (tests/support/cuda_twin.hpp); the largest sums
// here (the MLP's dW over N*H <= 786 rows) stay within its budget.
#include <loglinear/cuda/lambda/lambda.hpp>
#include <loglinear/lambda/lambda.hpp>

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

// Moves every CPU parameter away from its initial value (W2 = 0, b1 = 0, Lp = 1 at init would
// hide wrong indices in a backward) and gives every gradient a random start on both twins.
void perturb(const std::vector<Param<float>*>& cpu, const std::vector<DeviceParam*>& gpu, Context& ctx,
             std::mt19937_64& rng) {
  perturb_twins(cpu, gpu, ctx, rng, 0.5);
}

}  // namespace

TEST_CASE("cuda lambda: every mode's forward and backward equal the CPU twin", "[cuda][gpu][lambda]") {
  REQUIRE_GPU();
  const std::string mode = GENERATE(from_range(lambda::lambda_names()));
  const auto [N, H, L, hidden] = GENERATE(table<Index, Index, Index, Index>({{1, 1, 1, 1}, {7, 3, 5, 6}, {130, 2, 12, 64},
                                                                        {257, 3, 9, 33}}));
  CAPTURE(mode, N, H, L, hidden);
  std::mt19937_64 rng(std::uint64_t(N * 1000003 + H * 1009 + L * 31 + hidden) ^ std::hash<std::string>{}(mode));
  auto cpu = lambda::make_level_weights<float>(mode, {H, L, hidden, "layers.1.lambda."}, rng);
  Context ctx;
  auto gpu = cuda::lambda::make_level_weights(*cpu, H, L, ctx);
  CHECK(gpu->name() == mode);
  CHECK(gpu->heads() == H);
  CHECK(gpu->levels() == L);
  const auto cps = cpu->params();
  const auto gps = gpu->params();
  REQUIRE(cps.size() == gps.size());
  for (std::size_t i = 0; i < cps.size(); ++i) {
    CHECK(gps[i]->name == cps[i]->name);
    CHECK(gps[i]->weight_decay == cps[i]->weight_decay);
    check_twin(cps[i]->name + " at init", ctx, gps[i]->value, cps[i]->value, 0.0);
  }
  perturb(cps, gps, ctx, rng);

  for (const Index n : {N, N + 4}) {  // a second round: caches resized, gradients accumulated
    CAPTURE(n);
    const RowMatrix<float> dl = random_matrix(n, H * L, rng, 1.5), dlam = random_matrix(n, H * L, rng);
    DeviceMatrix lam, ddl;
    gpu->forward(ctx, to_device(dl), lam);
    check_twin("lam", ctx, lam, cpu->forward(dl));
    gpu->backward(ctx, to_device(dlam), ddl);
    check_twin("ddl", ctx, ddl, cpu->backward(dlam));
    for (std::size_t i = 0; i < cps.size(); ++i) check_twin("d" + cps[i]->name, ctx, gps[i]->grad, cps[i]->grad);
  }
}

TEST_CASE("cuda lambda: shape mismatches and a mismatched CPU twin name the argument", "[cuda][gpu][lambda]") {
  REQUIRE_GPU();
  std::mt19937_64 rng(1);
  auto cpu = lambda::make_level_weights<float>("fixed", {2, 3, 4, ""}, rng);
  Context ctx;
  auto gpu = cuda::lambda::make_level_weights(*cpu, ctx);
  DeviceMatrix lam, ddl;
  const DeviceMatrix dlam = to_device(random_matrix(4, 6, rng));
  CHECK_THROWS_WITH(gpu->backward(ctx, dlam, ddl), ContainsSubstring("dlam: expected"));  // no forward yet
  CHECK_THROWS_WITH(gpu->forward(ctx, to_device(random_matrix(4, 5, rng)), lam), ContainsSubstring("dl: expected"));
  gpu->forward(ctx, to_device(random_matrix(4, 6, rng)), lam);
  CHECK_THROWS_WITH(gpu->backward(ctx, to_device(random_matrix(3, 6, rng)), ddl), ContainsSubstring("dlam: expected"));
  CHECK_NOTHROW(gpu->backward(ctx, dlam, ddl));
  CHECK_THROWS_WITH(cuda::lambda::make_level_weights(*cpu, 3, 3, ctx), ContainsSubstring("heads: expected"));
  CHECK_THROWS_WITH(cuda::lambda::make_level_weights(*cpu, 2, 4, ctx), ContainsSubstring("levels: expected"));
  CHECK_THROWS_WITH(cuda::lambda::make_mlp_softplus(*cpu, ctx), ContainsSubstring("cpu: expected"));
}
