// GPU twin of nn/layernorm.hpp: output, dx, dgamma and dbeta against the CPU twin on rows of
// widths below, at and above one warp (1, 31, 64, 100, 512), with non-trivial gamma and beta.
#include <loglinear/cuda/nn/layernorm.hpp>
#include <loglinear/nn/layernorm.hpp>

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

TEST_CASE("cuda nn::layernorm: forward and backward equal the CPU twin", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  const auto [N, d] = GENERATE(table<Index, Index>({{1, 1}, {3, 31}, {257, 64}, {1000, 100}, {65, 512}}));
  CAPTURE(N, d);
  std::mt19937_64 rng(N * 7 + d);
  Context ctx;
  // Rows with an offset, so that the mean matters.
  RowMatrix<float> x = random_matrix(N, d, rng, 2.0);
  x.array() += 3.0f;
  const RowMatrix<float> gamma = random_matrix(1, d, rng), beta = random_matrix(1, d, rng),
                         dy = random_matrix(N, d, rng);
  nn::LayerNormCache<float> cpu_cache;
  const RowMatrix<float> y_cpu = nn::layernorm_forward<float>(x, gamma, beta, cpu_cache);
  cuda::nn::LayerNormCache cache;
  DeviceMatrix y;
  const DeviceMatrix gd = to_device(gamma);
  cuda::nn::layernorm_forward(ctx, to_device(x), gd, to_device(beta), cache, y);
  // d = 1: every xhat is 0 exactly, y = beta; the tolerance is the twin one regardless.
  check_twin("y", ctx, y, y_cpu);
  RowMatrix<float> dgamma = random_matrix(1, d, rng), dbeta = random_matrix(1, d, rng);
  DeviceMatrix dgd = to_device(dgamma), dbd = to_device(dbeta), dx;
  cuda::nn::layernorm_backward(ctx, to_device(dy), gd, cache, dgd, dbd, dx);
  const RowMatrix<float> dx_cpu = nn::layernorm_backward<float>(dy, gamma, cpu_cache, dgamma, dbeta);
  // dx = rstd (dxhat - mean - xhat mean(..)): the means cancel most of dxhat, so dx carries the
  // error of terms ~|dxhat| while itself being smaller; d <= 512 keeps that below 1e-5 normwise.
  check_twin("dx", ctx, dx, dx_cpu);
  check_twin("dgamma", ctx, dgd, dgamma);
  check_twin("dbeta", ctx, dbd, dbeta);
}

TEST_CASE("cuda nn::layernorm: shape mismatches name the argument", "[cuda][gpu][nn]") {
  REQUIRE_GPU();
  Context ctx;
  cuda::nn::LayerNormCache cache;
  DeviceMatrix y;
  CHECK_THROWS_WITH(cuda::nn::layernorm_forward(ctx, DeviceMatrix(2, 4), DeviceMatrix(1, 3), DeviceMatrix(1, 4), cache, y),
                    Catch::Matchers::ContainsSubstring("gamma: expected [1, 4]"));
  cuda::nn::layernorm_forward(ctx, DeviceMatrix(2, 4), DeviceMatrix(1, 4), DeviceMatrix(1, 4), cache, y);
  DeviceMatrix dg(1, 4), db(1, 4), dx;
  CHECK_THROWS_WITH(cuda::nn::layernorm_backward(ctx, DeviceMatrix(3, 4), DeviceMatrix(1, 4), cache, dg, db, dx),
                    Catch::Matchers::ContainsSubstring("dy: expected the forward's shape [2, 4]"));
}
