// Random inputs and gradient helpers for the Gated DeltaNet operator's tests: the Mamba-2 random
// inputs (random_inputs.hpp) plus beta, NaN-prefilled gradient storage, and one comparison of
// every gradient. Shared by tests/attention/test_gdn.cpp and test_gdn_chunked.cpp.
#pragma once

#include "compare.hpp"
#include "random_inputs.hpp"

#include <loglinear/core/gdn_inputs.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace loglinear::test {

/// Owning Gated DeltaNet inputs: the Mamba-2 ones (with dout) plus beta [B,T,H].
template <class Scalar>
struct GdnCase {
  OwnedInputs<Scalar> base;  ///< q, k, v, lam, g and a random dout
  Tensor<Scalar, 3> beta;    ///< [B,T,H], in [0.05, 0.95]
  /// Views for the API.
  GdnInputs<Scalar> view() const { return {base.view(), beta}; }
};

/// Draws a case from `seed` (same values in float and double: drawn in double, rounded once).
/// Keys are L2-normalised as in the model (SPEC.md §6), so that every transition I - beta k k^T
/// is a contraction; unit_keys = false then rescales each key to a length in [0.5, 1.4], so that
/// a term right only for |k| = 1 shows up. beta ~ U[0.05, 0.95] keeps finite-difference steps
/// inside [0, 1].
template <class Scalar>
GdnCase<Scalar> random_gdn_case(const Sizes& s, std::uint64_t seed, bool unit_keys = true) {
  auto in = random_inputs<double>(s, seed);
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::uniform_real_distribution<double> length(0.5, 1.4);
  for (Index i = 0; i < in.k.size(); i += s.K) {
    double norm = 0;
    for (Index j = 0; j < s.K; ++j) norm += in.k.data()[i + j] * in.k.data()[i + j];
    norm = std::sqrt(norm) / (unit_keys ? 1.0 : length(rng));
    for (Index j = 0; j < s.K && norm > 0; ++j) in.k.data()[i + j] /= norm;
  }
  Tensor<double, 3> beta({s.B, s.T, s.H});
  std::uniform_real_distribution<double> uniform(0.05, 0.95);
  for (auto& x : beta.values()) x = uniform(rng);
  OwnedInputs<Scalar> base{cast<Scalar>(in.q), cast<Scalar>(in.k), cast<Scalar>(in.v),
                           cast<Scalar>(in.lam), cast<Scalar>(in.g), cast<Scalar>(in.dout)};
  return {std::move(base), cast<Scalar>(beta)};
}

/// The sizes of a case, as the operator's checks return them.
template <class Scalar>
AttentionDims gdn_dims_of(const GdnCase<Scalar>& c) {
  return {c.base.q.dim(0), c.base.q.dim(1), c.base.v.dim(2), c.base.q.dim(2),
          c.base.q.dim(3), c.base.v.dim(3), c.base.lam.dim(3)};
}

/// Gradient storage for `d` with every entry NaN, so that a backward that adds where it should
/// overwrite (or leaves an entry unset) fails every comparison.
template <class Scalar>
GdnGradTensors<Scalar> nan_gdn_grads(const AttentionDims& d) {
  GdnGradTensors<Scalar> gr(d);
  const Scalar nan = std::numeric_limits<Scalar>::quiet_NaN();
  for (auto* t : {&gr.dq, &gr.dk, &gr.dv, &gr.dlam}) std::fill(t->values().begin(), t->values().end(), nan);
  for (auto* t : {&gr.dg, &gr.dbeta}) std::fill(t->values().begin(), t->values().end(), nan);
  return gr;
}

/// Every gradient of `a` against `e`, normwise relative (compare.hpp).
template <class A, class E>
std::vector<Comparison> compare_gdn_grads(const std::string& what, const GdnGradTensors<A>& a,
                                          const GdnGradTensors<E>& e) {
  return {compare(what + " dq", a.dq, e.dq),         compare(what + " dk", a.dk, e.dk),
          compare(what + " dv", a.dv, e.dv),         compare(what + " dg", a.dg, e.dg),
          compare(what + " dbeta", a.dbeta, e.dbeta), compare(what + " dlam", a.dlam, e.dlam)};
}

/// sum(dout ⊙ o): the loss whose gradients a backward given dout returns.
template <class Scalar>
double dot_loss(const Tensor<Scalar, 4>& o, const Tensor<Scalar, 4>& dout) {
  double acc = 0;
  for (Index i = 0; i < o.size(); ++i) acc += double(o.values()[i]) * double(dout.values()[i]);
  return acc;
}

}  // namespace loglinear::test
