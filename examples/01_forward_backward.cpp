// Example 01: forward and backward of log-linear attention on random data.
//
// Shows: building inputs in the [B,T,H,D] layout, running the chunked form, getting the five
// gradients, and checking the chunked output against the naive definition.
// Run:    ./build/examples/01_forward_backward
// Prints: the sizes, |o|, the gradient norms and the max difference chunked vs naive (~1e-15).
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/naive.hpp>
#include <loglinear/core/fenwick.hpp>

#include <cmath>
#include <cstdio>
#include <random>

using namespace loglinear;

int main() {
  const Index B = 2, T = 300, H = 4, G = 4, K = 16, V = 32, L = num_levels(T);
  Tensor<double, 4> q({B, T, G, K}), k({B, T, G, K}), v({B, T, H, V}), lam({B, T, H, L});
  Tensor<double, 3> g({B, T, H});
  std::mt19937 rng(1);
  std::normal_distribution<double> n(0, 1);
  for (auto* t : {&q, &k}) for (auto& x : t->values()) x = n(rng) / 4;
  for (auto& x : v.values()) x = n(rng);
  for (auto& x : lam.values()) x = std::log1p(std::exp(n(rng)));  // positive level weights
  for (auto& x : g.values()) x = -0.1 * std::abs(n(rng));          // log-decay <= 0

  const AttentionInputs<double> in{q, k, v, g, lam};
  Tensor<double, 4> o(v.shape()), o_naive(v.shape());
  chunked_forward<double>(in, {64}, o);
  naive_forward<double>(in, o_naive);

  // Backward of the loss sum(o): dout = 1 everywhere.
  Tensor<double, 4> dout(v.shape());
  for (auto& x : dout.values()) x = 1.0;
  AttentionGradTensors<double> grads({B, T, H, G, K, V, L});
  chunked_backward<double>(in, {64}, dout, grads.views());

  auto norm = [](const auto& t) { double s = 0; for (double x : t.values()) s += x * x; return std::sqrt(s); };
  double diff = 0;
  for (Index i = 0; i < o.size(); ++i) diff = std::max(diff, std::abs(o.values()[i] - o_naive.values()[i]));
  std::printf("B=%ld T=%ld H=%ld K=%ld V=%ld, %ld levels\n", long(B), long(T), long(H), long(K), long(V), long(L));
  std::printf("|o| = %.6f, max |chunked - naive| = %.2e\n", norm(o), diff);
  std::printf("|dq| = %.4f |dk| = %.4f |dv| = %.4f |dg| = %.4f |dlam| = %.4f\n", norm(grads.dq),
              norm(grads.dk), norm(grads.dv), norm(grads.dg), norm(grads.dlam));
  return diff < 1e-10 ? 0 : 1;
}
