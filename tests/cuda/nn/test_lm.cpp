// The whole log-linear Mamba-2 LM on the GPU (cuda/nn/lm.hpp) against its CPU twin (nn/lm.hpp):
// for every lambda mode, one and several groups, and other sizes (T odd, T = 1, heads > 1, chunk
// 16 and 64), one step's loss, its count of right predictions and every parameter gradient on the
// same weights and batch; g and lambda of every block; 50 AdamW steps whose losses track the CPU
// run's; and the refusals. Weights are perturbed away from the initialisation first, so that no
// gradient path is zero by construction (the MLP modes' W2 = 0, the norms' weights = 1, D = 1).
//
// Tolerances. One step: 1e-4 normwise relative on the loss and per parameter gradient. Each block
// chains ~15 float32 layers (two norms, the mixer's ten, SwiGLU's three GEMMs, the residual adds),
// each within ~1e-6 of its CPU twin (tests/support/cuda_twin.hpp), so two blocks plus head and loss
// stay near 1e-5 and 1e-4 leaves an order of magnitude. 50 steps: the two runs are the same
// computation in different summation orders; their ~1e-6 difference can grow through AdamW's
// normalised steps (lr / sqrt(v)), so we bound the loss difference by 1e-3 relative at every step,
// far below the loss's own step-to-step change.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/nn/lm.hpp>
#include <loglinear/cuda/train/adamw.hpp>
#include <loglinear/cuda/train/clip.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/nn/lm.hpp>
#include <loglinear/train/adamw.hpp>
#include <loglinear/train/clip.hpp>

#include "../../support/cuda_twin.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr double kStepTolerance = 1e-4;
constexpr double kTrackTolerance = 1e-3;

struct Sizes {
  Index d, H, G, chunk, B, T;
};

nn::LmConfig config(const std::string& lambda, const Sizes& s) {
  nn::LmConfig c;
  c.vocab = 20;
  c.d_model = s.d;
  c.layers = 2;
  c.mlp_hidden = 24;
  c.mixer.expand = 2;
  c.mixer.heads = s.H;
  c.mixer.n_groups = s.G;
  c.mixer.d_state = 8;
  c.mixer.levels = num_levels(64);
  c.mixer.lambda = lambda;
  c.mixer.lambda_hidden = 8;
  c.mixer.chunk = s.chunk;
  return c;
}

// Random tokens and targets, every third target unscored (-1).
struct Batch {
  std::vector<std::int32_t> tokens, targets;
};
Batch random_batch(Index B, Index T, Index vocab, std::mt19937_64& rng) {
  Batch b;
  for (Index i = 0; i < B * T; ++i) {
    b.tokens.push_back(std::int32_t(rng() % std::uint64_t(vocab)));
    b.targets.push_back(i % 3 == 2 ? -1 : std::int32_t(rng() % std::uint64_t(vocab)));
  }
  return b;
}

void perturb(nn::MambaLm<float>& m, std::mt19937_64& rng) {
  for (Param<float>* p : m.params()) p->value += random_matrix(p->value.rows(), p->value.cols(), rng, 0.05);
}

void check_one_step(const std::string& lambda, const Sizes& s, std::uint64_t seed) {
  const nn::LmConfig cfg = config(lambda, s);
  std::mt19937_64 rng(seed);
  nn::MambaLm<float> cpu(cfg, seed);
  perturb(cpu, rng);
  cuda::nn::MambaLm gpu(cpu);
  const Batch batch = random_batch(s.B, s.T, cfg.vocab, rng);
  Index right_cpu = 0, right_gpu = -1;
  cpu.zero_grad();
  gpu.zero_grad();
  const double loss_cpu = cpu.forward(batch.tokens, batch.targets, s.B, &right_cpu);
  const double loss_gpu = gpu.forward(batch.tokens, batch.targets, s.B, &right_gpu);
  CAPTURE(loss_cpu, loss_gpu);
  CHECK(std::abs(loss_gpu - loss_cpu) <= kStepTolerance * std::abs(loss_cpu));
  CHECK(right_gpu == right_cpu);
  cpu.backward();
  gpu.backward();
  check_param_grads(cpu.params(), gpu.params(), gpu.context(), kStepTolerance);
  // The statistics' inputs, too.
  for (Index l = 0; l < cfg.layers; ++l) {
    check_twin("g of block " + std::to_string(l), gpu.context(), gpu.last_decay(l), cpu.mixer(l).last_decay(),
               kStepTolerance);
    check_twin("lambda of block " + std::to_string(l), gpu.context(), gpu.last_lambda(l), cpu.mixer(l).last_lambda(),
               kStepTolerance);
  }
}

}  // namespace

TEST_CASE("cuda nn::MambaLm: one step's loss and every gradient equal the CPU LM, every lambda mode",
          "[cuda][gpu][nn][model]") {
  REQUIRE_GPU();
  const std::string lambda = GENERATE(from_range(lambda::lambda_names()));
  const Index G = GENERATE(1, 2);
  CAPTURE(lambda, G);
  // T = 37: odd, three chunks of 16 with a ragged last one; 2 heads of V = 16.
  check_one_step(lambda, Sizes{16, 2, G, 16, 3, 37}, 101);
}

TEST_CASE("cuda nn::MambaLm: one step equals the CPU LM at other sizes", "[cuda][gpu][nn][model]") {
  REQUIRE_GPU();
  const Sizes s = GENERATE(Sizes{16, 1, 1, 64, 2, 1},   // T = 1, one head
                           Sizes{32, 4, 2, 64, 2, 64},  // one full chunk of 64, groups of two heads
                           Sizes{24, 3, 1, 16, 4, 50},  // odd head count, ragged last chunk
                           Sizes{32, 4, 4, 16, 1, 64});
  CAPTURE(s.d, s.H, s.G, s.chunk, s.B, s.T);
  check_one_step("mlp_softplus", s, 202);
}

TEST_CASE("cuda nn::MambaLm: 50 AdamW steps track the CPU run's losses", "[cuda][gpu][nn][model]") {
  REQUIRE_GPU();
  const std::string lambda = GENERATE(std::string("fixed"), std::string("mlp_softmax"));
  const Index G = GENERATE(1, 2);
  CAPTURE(lambda, G);
  const nn::LmConfig cfg = config(lambda, Sizes{16, 2, G, 16, 4, 32});
  std::mt19937_64 rng(7);
  nn::MambaLm<float> cpu(cfg, 7);
  cuda::nn::MambaLm gpu(cpu);
  train::AdamW<float> cpu_opt(cpu.params(), 0.9, 0.999, 1e-8, 0.1);
  cuda::train::AdamW gpu_opt(gpu.params(), 0.9, 0.999, 1e-8, 0.1, gpu.context());
  cuda::train::GlobalNormClip gpu_clip(gpu.params());
  double worst = 0;
  for (int step = 0; step < 50; ++step) {
    const Batch batch = random_batch(4, 32, cfg.vocab, rng);
    cpu.zero_grad();
    gpu.zero_grad();
    const double lc = cpu.forward(batch.tokens, batch.targets, 4), lg = gpu.forward(batch.tokens, batch.targets, 4);
    cpu.backward();
    gpu.backward();
    train::clip_grad_norm(cpu.params(), 1.0);
    gpu_clip.clip(gpu.context(), 1.0);
    cpu_opt.step(3e-3);
    gpu_opt.step(gpu.context(), 3e-3);
    worst = std::max(worst, std::abs(lg - lc) / std::abs(lc));
    INFO("step " << step << ": cpu " << lc << " gpu " << lg);
    CHECK(std::abs(lg - lc) <= kTrackTolerance * std::abs(lc));
  }
  WARN("50 steps, " << lambda << ", G = " << G << ": worst relative loss difference " << worst);
}

TEST_CASE("cuda nn::MambaLm: what the GPU cannot run and bad batches are refused with a message",
          "[cuda][gpu][nn][model]") {
  REQUIRE_GPU();
  nn::LmConfig c = config("fixed", Sizes{8, 2, 1, 128, 1, 8});
  nn::MambaLm<float> big_chunk(c, 1);
  CHECK_THROWS_WITH(cuda::nn::MambaLm(big_chunk), ContainsSubstring("chunk: expected a power of two <= 64"));
  c.mixer.chunk = 16;
  c.mixer.form = Form::recurrent;
  nn::MambaLm<float> recurrent(c, 1);
  CHECK_THROWS_WITH(cuda::nn::MambaLm(recurrent), ContainsSubstring("form: expected chunked"));
  c.mixer.form = Form::chunked;
  nn::MambaLm<float> ok(c, 1);
  cuda::nn::MambaLm gpu(ok);
  CHECK_THROWS_WITH(gpu.backward(), ContainsSubstring("expected a forward() first"));
  CHECK_THROWS_WITH(gpu.last_decay(2), ContainsSubstring("layer: expected in [0, 2)"));
  std::mt19937_64 rng(3);
  Batch bad = random_batch(1, 4, c.vocab, rng);
  bad.tokens[2] = 99;
  CHECK_THROWS_WITH(gpu.forward(bad.tokens, bad.targets, 1), ContainsSubstring("tokens: expected ids in [0, 20)"));
  bad = random_batch(1, 4, c.vocab, rng);
  bad.targets[1] = 20;
  CHECK_THROWS_WITH(gpu.forward(bad.tokens, bad.targets, 1), ContainsSubstring("targets: expected -1 or ids in [0, 20)"));
  bad = random_batch(1, 5, c.vocab, rng);
  CHECK_THROWS_WITH(gpu.forward(bad.tokens, bad.targets, 2), ContainsSubstring("tokens: expected B*T ids with B = 2"));
  bad = random_batch(1, 65, c.vocab, rng);  // num_levels(65) = 8 > num_levels(64)
  CHECK_THROWS_WITH(gpu.forward(bad.tokens, bad.targets, 1), ContainsSubstring("levels: expected >= num_levels(T)"));
}
