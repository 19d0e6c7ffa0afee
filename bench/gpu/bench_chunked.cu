// Times the CUDA chunked forward and forward+backward through the device-pointer API (no host
// copies, workspace allocated once), for the shapes of issue 7: B*T = 32768 tokens, H = 16, q/k
// shared (G = 1), head dim 64 and 128, T = 1K..32K, float32 and bf16 storage. Prints a Markdown
// table with ms, tokens/s and the forward's useful GFLOP/s.
//   ./build/bench/gpu/bench_cuda_chunked [tokens [D [T]]]   (D, T pick one configuration, e.g. for ncu)
//   LOGLINEAR_BENCH_STORAGE=bf16 ./build/bench/gpu/bench_cuda_chunked   (one storage type only)
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include "cuda_check.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::cuda;

namespace {
template <class T>
T* device_random(size_t n, float scale, float offset, std::mt19937& rng, bool negative_abs = false) {
  std::normal_distribution<float> d(0, 1);
  std::vector<T> h(n);
  for (auto& x : h) x = T(negative_abs ? -std::abs(d(rng)) * scale : d(rng) * scale + offset);
  T* p = nullptr;
  LOGLINEAR_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  LOGLINEAR_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}
template <class T>
T* device_alloc(size_t n) {
  T* p = nullptr;
  LOGLINEAR_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
  return p;
}
// Timed repetitions after one warm-up: 5, or LOGLINEAR_BENCH_REPS (e.g. 1 under ncu, which replays
// every launch anyway).
int bench_reps() {
  const char* env = std::getenv("LOGLINEAR_BENCH_REPS");
  const int reps = env ? std::atoi(env) : 5;
  return reps >= 1 && reps <= 1000 ? reps : 5;
}

template <class Fn>
float time_ms(Fn&& fn, int reps = bench_reps()) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  fn();  // warm-up
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  cudaEventRecord(a);
  for (int i = 0; i < reps; ++i) fn();
  cudaEventRecord(b);
  LOGLINEAR_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / reps;
}

template <class In>
void run(const char* name, int D, long T, long tokens, std::mt19937& rng) {
  const int H = 16, G = 1, C = 64;
  const long B = tokens / T;
  const AttentionDims d{B, T, H, G, D, D, num_levels(T)};
  const size_t nq = size_t(B) * T * G * D, nv = size_t(B) * T * H * D, ng = size_t(B) * T * H, nl = ng * d.L;
  In *q = device_random<In>(nq, 0.125f, 0, rng), *k = device_random<In>(nq, 0.125f, 0, rng),
     *v = device_random<In>(nv, 1, 0, rng), *dout = device_random<In>(nv, 1, 0, rng);
  float *g = device_random<float>(ng, 0.05f, 0, rng, true), *lam = device_random<float>(nl, 0.2f, 1, rng);
  In *o = device_alloc<In>(nv), *dq = device_alloc<In>(nq), *dk = device_alloc<In>(nq), *dv = device_alloc<In>(nv);
  float *dg = device_alloc<float>(ng), *dlam = device_alloc<float>(nl);
  const Precision prec = std::is_same_v<In, float> ? Precision::fp32 : Precision::bf16;
  const size_t ws_bytes = chunked_workspace_bytes(d, {C}, prec, true);  // the backward's covers the forward's
  void* ws = device_alloc<unsigned char>(ws_bytes);
  const DeviceInputs<In> in{q, k, v, g, lam};
  const float fwd = time_ms([&] { chunked_forward_device<In>(in, d, {C}, o, ws, ws_bytes); });
  // The backward recomputes the forward's state (gamma, U, Hin) itself, so "fwd+bwd" is the
  // forward for o plus the backward, as one training step needs.
  const float both = time_ms([&] {
    chunked_forward_device<In>(in, d, {C}, o, ws, ws_bytes);
    chunked_backward_device<In>(in, d, {C}, dout, {dq, dk, dv, dg, dlam}, ws, ws_bytes);
  });
  // Useful forward FLOPs per (sequence, head): stage 1 T C (K + V), stage 2 2 T K V, reader
  // levels E (2 T K V / 2 on average: half the chunks read each level) -> counted as E T K V.
  const int E = std::max(0, num_levels(T) - 7);
  const double flops = double(B) * H * (double(T) * C * 2 * D + 2.0 * T * D * D + E * double(T) * D * D);
  std::printf("| %s | %d | %ld | %ld | %.2f | %.2f | %.2f | %.0f |\n", name, D, T, B, fwd, both,
              double(tokens) / (both * 1e-3) * 1e-6, flops / (fwd * 1e-3) * 1e-9);
  std::fflush(stdout);
  for (void* p : {static_cast<void*>(q), static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(dout),
                  static_cast<void*>(g), static_cast<void*>(lam), static_cast<void*>(o), static_cast<void*>(dq),
                  static_cast<void*>(dk), static_cast<void*>(dv), static_cast<void*>(dg), static_cast<void*>(dlam), ws})
    cudaFree(p);
}
}  // namespace

int main(int argc, char** argv) {
  const long tokens = argc > 1 ? std::atol(argv[1]) : 32768;
  const int only_D = argc > 2 ? std::atoi(argv[2]) : 0;
  const long only_T = argc > 3 ? std::atol(argv[3]) : 0;
  // LOGLINEAR_BENCH_STORAGE=fp32 or bf16 times one storage type only (default: both).
  if (tokens < 1 || only_T < 0 || (only_T > 0 && tokens % only_T != 0)) {
    std::fprintf(stderr, "bench_cuda_chunked: expected [B*T >= 1 [D [T dividing B*T]]], got %ld %d %ld\n", tokens,
                 only_D, only_T);
    return 2;
  }
  const char* env = std::getenv("LOGLINEAR_BENCH_STORAGE");
  const std::string storage = env ? env : "both";
  std::printf("# bench_cuda_chunked on %s, B*T = %ld, H = 16, G = 1, C = 64 (bf16 storage: tensor cores)\n\n",
              device_name().c_str(), tokens);
  std::printf("| storage | D | T | B | fwd ms | fwd+bwd ms | Mtokens/s (fwd+bwd) | fwd GFLOP/s |\n"
              "|---|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(0);
  for (int D : {64, 128}) {
    if (only_D && D != only_D) continue;
    // T from 1024 up to B*T by doubling; a given T runs alone, shorter ones included (T = 64 has no
    // chunk level at all: the fixed per-chunk cost alone).
    for (long T = only_T > 0 ? only_T : 1024; T <= tokens; T *= 2) {
      if (only_T && T != only_T) break;
      if (storage != "bf16") run<float>("fp32", D, T, tokens, rng);
      if (storage != "fp32") run<__nv_bfloat16>("bf16", D, T, tokens, rng);
    }
  }
  return 0;
}
