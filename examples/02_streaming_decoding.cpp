// Example 02: streaming decoding, one token at a time, with O(log T) state.
//
// Shows: the Decoder consuming tokens one by one, its memory growing with the number of levels
// (not with T), and its outputs matching the full chunked forward.
// Run:    ./build/examples/02_streaming_decoding
// Prints: the state size every power of two tokens and the max difference to the full forward.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/decoder.hpp>
#include <loglinear/core/fenwick.hpp>

#include <cmath>
#include <cstdio>
#include <random>

using namespace loglinear;

int main() {
  const Index B = 1, T = 1024, H = 2, K = 8, V = 8, L = num_levels(T);
  Tensor<double, 4> q({B, T, H, K}), k({B, T, H, K}), v({B, T, H, V}), lam({B, T, H, L});
  Tensor<double, 3> g({B, T, H});
  std::mt19937 rng(2);
  std::normal_distribution<double> n(0, 1);
  for (auto* t : {&q, &k, &v, &lam}) for (auto& x : t->values()) x = n(rng) / 3;
  for (auto& x : g.values()) x = -0.02 * std::abs(n(rng));
  Tensor<double, 4> o_full(v.shape());
  chunked_forward<double>({q, k, v, g, lam}, {64}, o_full);

  Decoder<double> dec(B, H, H, K, V);
  Tensor<double, 3> q_t({B, H, K}), k_t({B, H, K}), v_t({B, H, V}), lam_t({B, H, L}), o_t({B, H, V});
  Tensor<double, 2> g_t({B, H});
  double diff = 0;
  for (Index t = 0; t < T; ++t) {
    for (Index h = 0; h < H; ++h) {
      for (Index i = 0; i < K; ++i) { q_t(0, h, i) = q(0, t, h, i); k_t(0, h, i) = k(0, t, h, i); }
      for (Index j = 0; j < V; ++j) v_t(0, h, j) = v(0, t, h, j);
      for (Index l = 0; l < L; ++l) lam_t(0, h, l) = lam(0, t, h, l);
      g_t(0, h) = g(0, t, h);
    }
    dec.step(q_t, k_t, v_t, g_t, lam_t, o_t);
    for (Index h = 0; h < H; ++h)
      for (Index j = 0; j < V; ++j) diff = std::max(diff, std::abs(o_t(0, h, j) - o_full(0, t, h, j)));
    if (((t + 1) & t) == 0) {
      std::printf("after %5ld tokens: %2d levels, state %6ld bytes\n", long(t + 1), num_levels(t + 1),
                  long(dec.state_bytes()));
    }
  }
  std::printf("max |decoder - full forward| over %ld tokens = %.2e\n", long(T), diff);
  return diff < 1e-10 ? 0 : 1;
}
