// Handwritten backward passes of the three forms (docs/backward.md): finite differences in
// double, agreement between forms, float vs double, causality, the identities of SPEC.md §3.1,
// grouped q/k, long strongly decaying sequences, and independence of the thread count.
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/compare.hpp"
#include "../support/attention_gradcheck.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>

using namespace loglinear;
using namespace loglinear::test;

namespace {

template <class Scalar>
AttentionDims dims_of(const OwnedInputs<Scalar>& in) {
  AttentionDims d{in.q.dim(0), in.q.dim(1), in.v.dim(2), in.q.dim(2),
                  in.q.dim(3), in.v.dim(3), in.lam.dim(3)};
  return d;
}

template <class Scalar>
AttentionGradTensors<Scalar> grads_of(Form f, const OwnedInputs<Scalar>& in, Index C) {
  AttentionGradTensors<Scalar> gr(dims_of(in));
  backward<Scalar>(f, in.view(), ChunkedOptions{C}, in.dout, gr.views());
  return gr;
}

// Loss = sum(dout ⊙ o), whose gradients are exactly what backward(dout) returns.
double loss(Form f, const OwnedInputs<double>& in, Index C) {
  Tensor<double, 4> o(in.v.shape());
  forward<double>(f, in.view(), ChunkedOptions{C}, o);
  double acc = 0;
  for (Index i = 0; i < o.size(); ++i) acc += o.values()[i] * in.dout.values()[i];
  return acc;
}

// Keeps g away from 0 so that finite-difference steps never make it positive.
void clamp_g(OwnedInputs<double>& in) {
  for (auto& x : in.g.values()) x = std::min(x, -1e-2);
}

}  // namespace

TEST_CASE("TMPHELPER backward",
          "[backward][fd]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Index T = GENERATE(1, 3, 8, 33, 128);
  const Index C = GENERATE(2, 16);
  const Index G = GENERATE(1, 2);
  const Sizes s{2, T, 2, G, 3, 2};
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), describe(s), C, seed);
  auto in = random_inputs<double>(s, seed);
  clamp_g(in);
  auto gr = grads_of(form, in, C);
  auto L = [&] { return loss(form, in, C); };
  // Central differences have O(eps^2) truncation and O(1e-16 / eps) rounding error: with
  // eps = 1e-5 both sit near 1e-10 relative, far below the 1e-6 bound. Tensors of up to
  // kCheckAllUpTo elements are checked in full, larger ones on a sample drawn from this case's
  // seed (so every run looks at other elements).
  for (const auto& r : gradcheck_attention(in, gr, L, seed)) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}
