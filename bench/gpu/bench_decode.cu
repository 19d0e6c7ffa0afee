// Times the device decoding step (cuda/loglinear/cuda/decoder.hpp: decode_step_device: cascade,
// decay, insert and the read of one token) for issue 14's decode table:
//  - per-token latency at positions t = 1 .. 1M (it should stay flat: O(log t) levels);
//  - batched throughput for B = 1 .. 256 streams of H = 16 heads, K = V = 64 and 128.
// Each figure is 200 consecutive steps from token t (CUDA events around the loop, one warm-up
// step first), the state zero-initialised with Lmax = num_levels(2^20 + 256) levels allocated.
// Two kernel versions in one sitting (cuda/src/attention/decoder_step.cu): v1, update then read
// (two launches, three passes over the live levels), and v2, the fused kernel decode_step_device
// runs (one launch, two passes: each live level read once and written once).
// Bound: memory for large B, launches for small B. Printed beside each latency: the state bytes
// the version moves per step (v1: 3, v2: 2 x B H levels K V x 4) over the time, in GB/s.
//   ./build/bench/gpu/bench_decode [--json FILE]
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/decoder.hpp>

#include "attention/launch.cuh"
#include "attention/params.cuh"
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
  int version, D;
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
  std::printf("| D | B | t | live levels | v1 us/token | v2 us/token | v2 tokens/s | v1 GB/s | v2 GB/s | v1 / v2 |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
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
        const int levels = int(num_levels(t + 1));
        double per[2] = {0, 0};
        for (int version : {1, 2}) {
          // v2 through the public API (its checks included); v1 through its launcher, the same
          // sizes and pointers.
          auto step = [&](long tok) {
            if (version == 2) {
              decode_step_device(d, S, tok, q, k, v, g, lam, o);
            } else {
              DecodeParams p{int(B), H, G, D, D, int(Lmax), int(Lmax), tok, int(num_levels(tok + 1)), S, q, k, v, g,
                             lam, o, nullptr, false};
              launch_decode_step_v1(p, nullptr);
            }
          };
          step(t - 1);  // warm-up (token t - 1)
          LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
          cudaEventRecord(a);
          for (int s = 0; s < steps; ++s) step(t + s);
          cudaEventRecord(b);
          LOGLINEAR_CUDA_CHECK(cudaEventSynchronize(b));
          float ms = 0;
          cudaEventElapsedTime(&ms, a, b);
          per[version - 1] = ms / steps;
          const double passes = version == 1 ? 3.0 : 2.0;
          const double bytes = passes * double(B) * H * levels * D * D * sizeof(float);
          rows.push_back({version, D, B, t, levels, per[version - 1], double(B) / (per[version - 1] * 1e-3),
                          bytes / (per[version - 1] * 1e-3) / 1e9});
        }
        const Row &r1 = rows[rows.size() - 2], &r2 = rows.back();
        std::printf("| %d | %ld | %ld | %d | %.1f | %.1f | %.3g | %.0f | %.0f | %.2fx |\n", D, B, t, levels,
                    r1.ms_per_token * 1e3, r2.ms_per_token * 1e3, r2.tokens_per_s, r1.gb_per_s, r2.gb_per_s,
                    per[0] / per[1]);
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
      std::fprintf(f, "%s{\"version\": %d, \"D\": %d, \"B\": %ld, \"t\": %ld, \"levels\": %d, "
                      "\"ms_per_token\": %.6g, \"tokens_per_s\": %.6g, \"state_gb_per_s\": %.6g}",
                   i ? ", " : "", r.version, r.D, r.B, r.t, r.levels, r.ms_per_token, r.tokens_per_s, r.gb_per_s);
    }
    std::fprintf(f, "]}\n");
    std::fclose(f);
  }
  return 0;
}
