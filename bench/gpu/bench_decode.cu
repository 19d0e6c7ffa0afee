// Times the device decoding step (cuda/loglinear/cuda/decoder.hpp: decode_step_device, two kernels
// a token: cascade + decay + insert, then the read) for issue 14's decode table:
//  - per-token latency at positions t = 1 .. 1M (it should stay flat: O(log t) levels);
//  - batched throughput for B = 1 .. 256 streams of H = 16 heads, K = V = 64 and 128.
// Each figure is 200 consecutive steps from token t (CUDA events around the loop, one warm-up
// step first), the state zero-initialised with Lmax = num_levels(2^20 + 256) levels allocated.
// Bound: memory. A step touches every live level of every stream about three times (the decay
// reads and writes levels 1.., the read kernel reads them all): bytes = 3 * B * H * levels * K * V
// * 4, printed as GB/s beside the latency.
//   ./build/bench/gpu/bench_decode [--json FILE]
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/decoder.hpp>

#include "cuda_check.cuh"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::cuda;

namespace {

float* device_random(size_t n, float scale, bool negative, std::mt19937& rng) {
  std::normal_distribution<float> d(0, 1);
  std::vector<float> h(n);
  for (auto& x : h) x = negative ? -std::abs(d(rng)) * scale : d(rng) * scale;
  float* p = nullptr;
  LOGLINEAR_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
  LOGLINEAR_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  return p;
}

struct Row {
  int D;
  long B, t;
  int levels;
  double ms_per_token, tokens_per_s, gb_per_s;
};

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json_path = argv[++i];
    else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::printf("usage: bench_decode [--json FILE]\n  Times decode_step_device at positions 1..1M and "
                  "B = 1..256 streams (H = 16, K = V = 64 and 128); prints a Markdown table.\n");
      return 0;
    } else {
      std::fprintf(stderr, "bench_decode: unknown argument %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  if (!device_available()) {
    std::fprintf(stderr, "bench_decode: no CUDA device\n");
    return 1;
  }
  const int H = 16, G = 1, steps = 200;
  const long positions[] = {1, 64, 1024, 65536, 1048576};
  const long batches[] = {1, 16, 64, 256};
  const Index Lmax = num_levels((Index(1) << 20) + 256);
  std::mt19937 rng(7);
  std::vector<Row> rows;
  std::printf("# %s; decode_step_device, H = %d, G = %d, %d steps per figure, Lmax = %ld\n\n", device_name().c_str(), H,
              G, steps, long(Lmax));
  std::printf("| D | B | t | live levels | us per token (all B streams) | tokens/s | state GB/s (3 passes) |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int D : {64, 128}) {
    for (long B : batches) {
      const size_t nS = size_t(B) * H * Lmax * D * D;
      float* S = nullptr;
      LOGLINEAR_CUDA_CHECK(cudaMalloc(&S, nS * sizeof(float)));
      LOGLINEAR_CUDA_CHECK(cudaMemset(S, 0, nS * sizeof(float)));
      float* q = device_random(size_t(B) * G * D, 0.1f, false, rng);
      float* k = device_random(size_t(B) * G * D, 0.1f, false, rng);
      float* v = device_random(size_t(B) * H * D, 1.0f, false, rng);
      float* g = device_random(size_t(B) * H, 0.01f, true, rng);
      float* lam = device_random(size_t(B) * H * Lmax, 1.0f, false, rng);
      float* o = nullptr;
      LOGLINEAR_CUDA_CHECK(cudaMalloc(&o, size_t(B) * H * D * sizeof(float)));
      const DecodeDims d{B, H, G, D, D, Lmax, Lmax};
      cudaEvent_t a, b;
      cudaEventCreate(&a);
      cudaEventCreate(&b);
      for (long t : positions) {
        decode_step_device(d, S, t - 1, q, k, v, g, lam, o);  // warm-up (token t - 1)
        LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
        cudaEventRecord(a);
        for (int s = 0; s < steps; ++s) decode_step_device(d, S, t + s, q, k, v, g, lam, o);
        cudaEventRecord(b);
        LOGLINEAR_CUDA_CHECK(cudaEventSynchronize(b));
        float ms = 0;
        cudaEventElapsedTime(&ms, a, b);
        const double per = ms / steps;
        const int levels = int(num_levels(t + 1));
        const double bytes = 3.0 * double(B) * H * levels * D * D * sizeof(float);
        rows.push_back({D, B, t, levels, per, double(B) / (per * 1e-3), bytes / (per * 1e-3) / 1e9});
        const Row& r = rows.back();
        std::printf("| %d | %ld | %ld | %d | %.1f | %.3g | %.0f |\n", D, B, t, levels, r.ms_per_token * 1e3,
                    r.tokens_per_s, r.gb_per_s);
        std::fflush(stdout);
      }
      cudaEventDestroy(a);
      cudaEventDestroy(b);
      for (float* p : {S, q, k, v, g, lam, o}) cudaFree(p);
    }
  }
  if (json_path) {
    FILE* f = std::fopen(json_path, "w");
    if (!f) {
      std::fprintf(stderr, "bench_decode: cannot write %s\n", json_path);
      return 1;
    }
    std::fprintf(f, "{\"device\": \"%s\", \"H\": %d, \"G\": %d, \"steps\": %d, \"rows\": [", device_name().c_str(), H, G,
                 steps);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f, "%s{\"D\": %d, \"B\": %ld, \"t\": %ld, \"levels\": %d, \"ms_per_token\": %.6g, "
                      "\"tokens_per_s\": %.6g, \"state_gb_per_s\": %.6g}",
                   i ? ", " : "", r.D, r.B, r.t, r.levels, r.ms_per_token, r.tokens_per_s, r.gb_per_s);
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  return 0;
}
