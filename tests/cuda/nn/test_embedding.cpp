// GPU twin of nn/embedding.hpp: gather forward and the deterministic gather-sum backward against
// the CPU twin, with repeated ids, unused ids and N = 1; errors for ids out of range.
#include <loglinear/cuda/nn/embedding.hpp>
#include <loglinear/nn/embedding.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <tuple>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Generators::table;
using loglinear::cuda::Context;
using loglinear::cuda::DeviceMatrix;
using loglinear::cuda::to_device;

TEST_CASE("cuda nn::embedding: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, vocab, d] = GENERATE(table<Index, Index, Index>({{1, 1, 1}, {5, 3, 7}, {700, 128, 64}, {4099, 256, 33}}));
  CAPTURE(N, vocab, d);
  std::mt19937_64 rng(N + vocab + d);
  std::vector<std::int32_t> tokens(static_cast<size_t>(N));
  // Ids from the lower half of the vocabulary only, so that some ids never occur.
  for (auto& t : tokens) t = std::int32_t(rng() % std::uint64_t(std::max<Index>(1, vocab / 2)));
  Context ctx;
  const RowMatrix<float> table = random_matrix(vocab, d, rng), dx = random_matrix(N, d, rng);
  cuda::nn::DeviceTokens dt;
  dt.set(tokens.data(), N, vocab, ctx.stream());
  DeviceMatrix x;
  cuda::nn::embedding_forward(ctx, dt, to_device(table), x);
  check_twin("x = table[tokens]", ctx, x, nn::embedding_forward(tokens, table));
  RowMatrix<float> dtable = random_matrix(vocab, d, rng);
  DeviceMatrix dtable_gpu = to_device(dtable);
  cuda::nn::embedding_backward(ctx, dt, to_device(dx), dtable_gpu);
  nn::embedding_backward(tokens, dx, dtable);
  check_twin("dtable += gather-sum of dx", ctx, dtable_gpu, dtable);
}

TEST_CASE("cuda nn::embedding: ids out of range and shape mismatches are refused", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  cuda::nn::DeviceTokens dt;
  const std::vector<std::int32_t> bad{0, 5};
  CHECK_THROWS_WITH(dt.set(bad.data(), 2, 5, ctx.stream()), Catch::Matchers::ContainsSubstring("tokens: expected ids in [0, 5), got 5 at 1"));
  const std::vector<std::int32_t> neg{-1};
  CHECK_THROWS_WITH(dt.set(neg.data(), 1, 5, ctx.stream()), Catch::Matchers::ContainsSubstring("got -1 at 0"));
  CHECK_THROWS_WITH(dt.set(nullptr, -1, 5, ctx.stream()), Catch::Matchers::ContainsSubstring("N: expected 0 <= N < 2^31"));
  CHECK_THROWS_WITH(dt.set(nullptr, 2, 5, ctx.stream()), Catch::Matchers::ContainsSubstring("tokens: expected a host pointer"));
  const std::vector<std::int32_t> bad_targets{0, 7};
  const std::vector<std::int32_t> two{0, 1};
  CHECK_THROWS_WITH(dt.set(two.data(), 2, 5, ctx.stream(), bad_targets.data()),
                    Catch::Matchers::ContainsSubstring("targets: expected -1 or ids in [0, 5), got 7 at 1"));
  const std::vector<std::int32_t> ok{0, 1};
  dt.set(ok.data(), 2, 5, ctx.stream());
  DeviceMatrix x;
  CHECK_THROWS_WITH(cuda::nn::embedding_forward(ctx, dt, DeviceMatrix(4, 3), x), Catch::Matchers::ContainsSubstring("table: expected"));
  DeviceMatrix dtable(5, 3);
  CHECK_THROWS_WITH(cuda::nn::embedding_backward(ctx, dt, DeviceMatrix(3, 3), dtable), Catch::Matchers::ContainsSubstring("dx: expected"));
}
