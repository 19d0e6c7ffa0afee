// Example 03: the CUDA backend, when one is built and a GPU is present.
//
// Shows: loglinear::cuda::chunked_forward / chunked_backward on host buffers, compared with the
// CPU chunked form. Without a GPU it says so and exits successfully.
// Run:    ./build/examples/03_cuda_backend
// Prints: the device, and the max relative difference GPU vs CPU for o and dq (~1e-6), or a skip line.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include <cmath>
#include <cstdio>
#include <random>

using namespace loglinear;

int main() {
  if (!cuda::device_available()) {
    std::printf("no CUDA device here: skipping the GPU example (the CPU forms are in examples 01-02)\n");
    return 0;
  }
  const Index B = 2, T = 1000, H = 4, K = 64, V = 64, L = num_levels(T);
  Tensor<float, 4> q({B, T, 1, K}), k({B, T, 1, K}), v({B, T, H, V}), lam({B, T, H, L}), dout({B, T, H, V});
  Tensor<float, 3> g({B, T, H});
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0, 1);
  for (auto* t : {&q, &k}) for (auto& x : t->values()) x = n(rng) / 8;
  for (auto* t : {&v, &dout}) for (auto& x : t->values()) x = n(rng);
  for (auto& x : lam.values()) x = std::log1p(std::exp(n(rng)));
  for (auto& x : g.values()) x = -0.05f * std::abs(n(rng));
  const AttentionInputs<float> in{q, k, v, g, lam};
  Tensor<float, 4> o_gpu(v.shape()), o_cpu(v.shape());
  cuda::chunked_forward<float>(in, {64}, o_gpu);
  chunked_forward<float>(in, {64}, o_cpu);
  AttentionGradTensors<float> gg({B, T, H, 1, K, V, L}), gc({B, T, H, 1, K, V, L});
  cuda::chunked_backward<float>(in, {64}, dout, gg.views());
  chunked_backward<float>(in, {64}, dout, gc.views());
  auto rel = [](const auto& a, const auto& b) {
    double e = 0, s = 1e-30;
    for (Index i = 0; i < a.size(); ++i) {
      e = std::max(e, double(std::abs(a.values()[i] - b.values()[i])));
      s = std::max(s, double(std::abs(b.values()[i])));
    }
    return e / s;
  };
  std::printf("%s: o rel diff %.2e, dq rel diff %.2e\n", cuda::device_name().c_str(), rel(o_gpu, o_cpu),
              rel(gg.dq, gc.dq));
  return rel(o_gpu, o_cpu) < 1e-4 ? 0 : 1;
}
