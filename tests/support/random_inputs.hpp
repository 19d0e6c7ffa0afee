// Random operator inputs for the tests: owning tensors plus the views the API takes.
// Distributions follow the fla test harness (SPEC.md §10) scaled so that outputs stay O(1):
// q, k ~ N(0, 1/K); v ~ N(0, 1); g = -exp(U[0,1)) * softplus(N(0,1) - 1) (a in ~[0.3, 1));
// lam ~ N(0, 1) (signed: the operator is linear in lam, so no sign is special).
#pragma once

#include <loglinear/core/inputs.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

namespace loglinear::test {

/// Sizes of one test case.
struct Sizes {
  Index B = 1, T = 1, H = 1, G = 1, K = 1, V = 1;
  Index L = 0;  ///< allocated levels; 0 means num_levels(T) + 2 (extra levels must stay unread)
};

/// Readable description for CAPTURE / failure messages.
inline std::string describe(const Sizes& s) {
  return "B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " H=" + std::to_string(s.H) +
         " G=" + std::to_string(s.G) + " K=" + std::to_string(s.K) + " V=" + std::to_string(s.V) +
         " L=" + std::to_string(s.L);
}

/// Owning inputs of one case, in any Scalar type (double values rounded once).
template <class Scalar>
struct OwnedInputs {
  Tensor<Scalar, 4> q, k, v, lam;  ///< see AttentionInputs
  Tensor<Scalar, 3> g;             ///< see AttentionInputs
  Tensor<Scalar, 4> dout;          ///< a random output gradient [B,T,H,V]

  /// Views for the API.
  AttentionInputs<Scalar> view() const { return {q, k, v, g, lam}; }
};

/// Fresh random seed per case (printed by CAPTURE so a failure can be replayed).
inline std::uint64_t fresh_seed() {
  static std::random_device rd;
  return (std::uint64_t(rd()) << 32) ^ rd();
}

/// Draws inputs of the given sizes from `seed`; the same seed gives the same values in float
/// and double (the double draw is rounded to float).
template <class Scalar>
OwnedInputs<Scalar> random_inputs(Sizes s, std::uint64_t seed, double g_scale = 1.0) {
  if (s.L == 0) s.L = [&] { Index L = 1; while ((Index{1} << (L - 1)) < s.T) ++L; return L + 2; }();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  OwnedInputs<Scalar> in{Tensor<Scalar, 4>({s.B, s.T, s.G, s.K}),
                         Tensor<Scalar, 4>({s.B, s.T, s.G, s.K}),
                         Tensor<Scalar, 4>({s.B, s.T, s.H, s.V}),
                         Tensor<Scalar, 4>({s.B, s.T, s.H, s.L}),
                         Tensor<Scalar, 3>({s.B, s.T, s.H}),
                         Tensor<Scalar, 4>({s.B, s.T, s.H, s.V})};
  const double qk_std = 1.0 / std::sqrt(double(s.K));
  for (auto& x : in.q.values()) x = Scalar(qk_std * normal(rng));
  for (auto& x : in.k.values()) x = Scalar(qk_std * normal(rng));
  for (auto& x : in.v.values()) x = Scalar(normal(rng));
  for (auto& x : in.lam.values()) x = Scalar(normal(rng));
  for (auto& x : in.g.values()) {
    const double u = normal(rng) - 1.0;
    const double softplus = u > 20 ? u : std::log1p(std::exp(u));
    x = Scalar(-g_scale * std::exp(uniform(rng)) * softplus);
  }
  for (auto& x : in.dout.values()) x = Scalar(normal(rng));
  return in;
}

/// Converts a tensor to another scalar type element by element.
template <class To, class From, int Rank>
Tensor<To, Rank> cast(const Tensor<From, Rank>& t) {
  Tensor<To, Rank> out(t.shape());
  for (Index i = 0; i < t.size(); ++i) out.values()[i] = To(t.values()[i]);
  return out;
}

}  // namespace loglinear::test
