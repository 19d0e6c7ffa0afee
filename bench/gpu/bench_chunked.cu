// Times the CUDA chunked forward and forward+backward on device buffers (no host copies), for
// the shapes of issue 7: B*T = 32768 tokens, H = 16, q/k shared (G = 1), head dim 64 and 128,
// T = 1K..32K, float32. Prints a Markdown table with ms, tokens/s and achieved FFMA GFLOP/s.
//   ./build/bench/gpu/bench_cuda_chunked [--dims 64,128] [--tokens 32768]
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include "params.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace loglinear;
using namespace loglinear::cuda;

namespace {
float* device_random(size_t n, float scale, float offset, std::mt19937& rng, bool negative_abs = false) {
  std::normal_distribution<float> d(0, 1);
  std::vector<float> h(n);
  for (auto& x : h) x = negative_abs ? -std::abs(d(rng)) * scale : d(rng) * scale + offset;
  float* p = nullptr;
  LOGLINEAR_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
  LOGLINEAR_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}
float* device_zeros(size_t n) {
  float* p = nullptr;
  LOGLINEAR_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float)));
  LOGLINEAR_CUDA_CHECK(cudaMemset(p, 0, std::max<size_t>(n, 1) * sizeof(float)));
  return p;
}
template <class Fn>
float time_ms(Fn&& fn, int reps = 5) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  fn();  // warm-up
  cudaEventRecord(a);
  for (int i = 0; i < reps; ++i) fn();
  cudaEventRecord(b);
  LOGLINEAR_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  return ms / reps;
}
}  // namespace

int main(int argc, char** argv) {
  const long tokens = argc > 1 ? std::atol(argv[1]) : 32768;
  // Optional: one head dim and one length only (for profiling one configuration with ncu).
  const int only_D = argc > 2 ? std::atoi(argv[2]) : 0;
  const long only_T = argc > 3 ? std::atol(argv[3]) : 0;
  std::printf("# bench_cuda_chunked on %s, float32 FFMA kernels (v1.1), B*T = %ld, H = 16, G = 1, C = 64\n\n",
              device_name().c_str(), tokens);
  std::printf("| D | T | B | fwd ms | fwd+bwd ms | Mtokens/s (fwd+bwd) | fwd GFLOP/s |\n|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(0);
  for (int D : {64, 128}) {
    if (only_D && D != only_D) continue;
    for (long T = 1024; T <= tokens; T *= 2) {
      if (only_T && T != only_T) continue;
      ChunkedParams p{};
      p.B = int(tokens / T); p.T = int(T); p.H = 16; p.G = 1; p.K = D; p.V = D; p.L = num_levels(T);
      p.C = 64; p.c = 6; p.N = int((T + 63) / 64); p.E = std::max(0, num_levels(T) - 7);
      const size_t nq = size_t(p.B) * T * p.G * D, nv = size_t(p.B) * T * p.H * D;
      const size_t ng = size_t(p.B) * T * p.H, nl = ng * p.L, nkv = size_t(p.B) * p.H * p.N * D * D;
      p.q = device_random(nq, 0.125f, 0, rng); p.k = device_random(nq, 0.125f, 0, rng);
      p.v = device_random(nv, 1, 0, rng); p.g = device_random(ng, 0.05f, 0, rng, true);
      p.lam = device_random(nl, 0.2f, 1, rng); p.dout = device_random(nv, 1, 0, rng);
      p.gamma = device_zeros(ng); p.U = device_zeros(nkv); p.Hin = device_zeros(nkv * std::max(p.E, 1));
      p.o = device_zeros(nv); p.dU = device_zeros(nkv);
      p.dq = device_zeros(nq); p.dk = device_zeros(nq); p.dv = device_zeros(nv);
      p.dg = device_zeros(ng); p.dlam = device_zeros(nl);
      const float fwd = time_ms([&] { launch_chunked_forward(p, nullptr); });
      const float bwd = time_ms([&] {
        for (float* x : {p.dq, p.dk, p.dv, p.dlam, p.dU}) cudaMemsetAsync(x, 0, 4, nullptr);
        launch_chunked_backward(p, nullptr);
      });
      // FLOPs of the forward per (sequence, head): stage 1 T C (K+V), stage 2 2TKV, levels E (TKV + TKV/C).
      const double flops = double(p.B) * p.H * (double(T) * 64 * 2 * D + 2.0 * T * D * D +
                                                 p.E * (double(T) * D * D + double(T) / 64 * D * D));
      std::printf("| %d | %ld | %d | %.2f | %.2f | %.1f | %.0f |\n", D, T, p.B, fwd, fwd + bwd,
                  double(tokens) / ((fwd + bwd) * 1e-3) * 1e-6, flops / (fwd * 1e-3) * 1e-9);
      std::fflush(stdout);
      for (const float* x : {p.q, p.k, p.v, p.g, p.lam, p.dout}) cudaFree(const_cast<float*>(x));
      for (float* x : {p.gamma, p.U, p.Hin, p.o, p.dU, p.dq, p.dk, p.dv, p.dg, p.dlam}) cudaFree(x);
    }
  }
  return 0;
}
