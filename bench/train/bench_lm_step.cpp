// Training-step throughput of the small log-linear Mamba-2 LM (reference/loglinear/nn/lm.hpp):
// forward + backward + AdamW on a random batch, on 1 and 2 OpenMP threads, and the share of the
// step spent in the attention operator (its chunked forward + backward timed alone on the same
// shapes). Run: build/bench/train/bench_lm_step [T ...]   (default T = 256 1024; B = 2, d = 64,
// 2 layers, H = 4, K = 16, expand 2, chunk 64). Prints one line per (T, threads).
#include <loglinear/attention/chunked.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/train/adamw.hpp>
#include <loglinear/train/clip.hpp>
#include <loglinear/nn/lm.hpp>

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <utility>

using namespace loglinear;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Median-free: the mean of `reps` runs after one warm-up, what a training loop sees.
template <class F>
double time_it(F&& f, int reps) {
  f();
  const auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) f();
  return seconds_since(t0) / reps;
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<Index> Ts;
  for (int i = 1; i < argc; ++i) Ts.push_back(std::atoll(argv[i]));
  if (Ts.empty()) Ts = {256, 1024};
  const Index B = 2;
  std::printf("hardware: %u hardware threads (shared with other jobs); float32\n", std::thread::hardware_concurrency());
  std::printf("%6s %8s %12s %12s %14s %10s\n", "T", "threads", "step ms", "tokens/s", "operator ms", "op share");
  for (Index T : Ts) {
    nn::LmConfig cfg;
    cfg.vocab = 256;
    cfg.d_model = 64;
    cfg.layers = 2;
    cfg.mlp_hidden = 256;
    cfg.mixer.heads = 4;
    cfg.mixer.d_state = 16;
    cfg.mixer.levels = num_levels(T);
    cfg.mixer.chunk = 64;
    nn::MambaLm<float> lm(cfg, 1);
    train::AdamW<float> opt(lm.params(), 0.9, 0.999, 1e-8, 0.1);
    std::mt19937_64 rng(2);
    std::vector<std::int32_t> tokens(B * T), targets(B * T);
    for (auto& t : tokens) t = std::int32_t(rng() % 256);
    for (auto& t : targets) t = std::int32_t(rng() % 256);
    // The operator alone on one mixer's shapes: q, k [B,T,1,16], v [B,T,4,32], g, lam.
    const Index H = 4, V = 32, K = 16, L = cfg.mixer.levels;
    Tensor<float, 4> q({B, T, 1, K}), k({B, T, 1, K}), v({B, T, H, V}), lam({B, T, H, L}), o({B, T, H, V}),
        dout({B, T, H, V});
    Tensor<float, 3> g({B, T, H});
    std::normal_distribution<float> n01(0, 1);
    for (auto* t : {&q, &k, &v, &lam, &dout})
      for (auto& x : t->values()) x = 0.3f * n01(rng);
    for (auto& x : g.values()) x = -0.05f;
    AttentionDims dims;
    dims.B = B, dims.T = T, dims.G = 1, dims.H = H, dims.K = K, dims.V = V, dims.L = L;
    AttentionGradTensors<float> gt(dims);
    const AttentionInputs<float> in{std::as_const(q).view(), std::as_const(k).view(), std::as_const(v).view(),
                                    std::as_const(g).view(), std::as_const(lam).view()};
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      const int reps = T >= 1024 ? 2 : 5;
      const double step = time_it(
          [&] {
            lm.zero_grad();
            lm.forward(tokens, targets, B);
            lm.backward();
            train::clip_grad_norm(lm.params(), 1.0);
            opt.step(1e-3);
          },
          reps);
      const double op = time_it(
          [&] {
            chunked_forward<float>(in, ChunkedOptions{64}, o.view());
            chunked_backward<float>(in, ChunkedOptions{64}, std::as_const(dout).view(), gt.views());
          },
          reps);
      // Two mixers per step, each one operator forward + backward.
      std::printf("%6lld %8d %12.2f %12.0f %14.2f %9.0f%%\n", (long long)T, threads, step * 1e3,
                  double(B * T) / step, 2 * op * 1e3, 100 * 2 * op / step);
    }
  }
  return 0;
}
