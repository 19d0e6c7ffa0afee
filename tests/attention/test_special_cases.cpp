// Special cases of the operator checked against oracles written here from their own definitions
// (SPEC.md §3): gated linear attention, causal linear attention and the level-0-only diagonal.
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/compare.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::test;

namespace {

// Gated linear attention as a plain O(T) scan: S_t = a_t S_{t-1} + k_t v_t^T, o_t = S_t^T q_t.
Tensor<double, 4> gated_linear_attention(const OwnedInputs<double>& in) {
  const Index B = in.v.dim(0), T = in.v.dim(1), H = in.v.dim(2), V = in.v.dim(3);
  const Index G = in.q.dim(2), K = in.q.dim(3);
  Tensor<double, 4> o(in.v.shape());
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h) {
      const Index gr = h / (H / G);
      std::vector<double> S(static_cast<size_t>(K * V), 0.0);
      for (Index t = 0; t < T; ++t) {
        const double a = std::exp(in.g(b, t, h));
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j)
            S[i * V + j] = a * S[i * V + j] + in.k(b, t, gr, i) * in.v(b, t, h, j);
        for (Index j = 0; j < V; ++j) {
          double acc = 0;
          for (Index i = 0; i < K; ++i) acc += in.q(b, t, gr, i) * S[i * V + j];
          o(b, t, h, j) = acc;
        }
      }
    }
  return o;
}

Tensor<double, 4> run(Form f, const OwnedInputs<double>& in, Index C) {
  Tensor<double, 4> o(in.v.shape());
  forward<double>(f, in.view(), ChunkedOptions{C}, o);
  return o;
}

}  // namespace

TEST_CASE("special: lam = 1 on every level equals gated linear attention", "[forms][oracle]") {
  const Index T = GENERATE(1, 2, 7, 64, 129, 300);
  const Sizes s{2, T, 4, 2, 5, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  auto in = random_inputs<double>(s, seed);
  for (auto& x : in.lam.values()) x = 1.0;
  const auto expected = gated_linear_attention(in);
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const auto c = compare(form_name(f) + " vs gated linear attention", run(f, in, 16), expected);
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);  // the same sums in another order: a few ulps of the largest term
  }
}

TEST_CASE("special: g = 0 with lam = 1 equals causal linear attention", "[forms][oracle]") {
  const Sizes s{1, 77, 2, 1, 4, 6};
  const auto seed = fresh_seed();
  CAPTURE(seed);
  auto in = random_inputs<double>(s, seed);
  for (auto& x : in.lam.values()) x = 1.0;
  for (auto& x : in.g.values()) x = 0.0;
  // Causal linear attention: o_t = sum_{s<=t} (q_t . k_s) v_s, summed directly.
  Tensor<double, 4> expected(in.v.shape());
  for (Index h = 0; h < 2; ++h)
    for (Index t = 0; t < 77; ++t)
      for (Index u = 0; u <= t; ++u) {
        double qk = 0;
        for (Index i = 0; i < 4; ++i) qk += in.q(0, t, 0, i) * in.k(0, u, 0, i);
        for (Index j = 0; j < 6; ++j) expected(0, t, h, j) += qk * in.v(0, u, h, j);
      }
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const auto c = compare(form_name(f) + " vs causal linear attention", run(f, in, 8), expected);
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);
  }
}

TEST_CASE("special: lam zero on all levels but 0 gives o_t = (q_t . k_t) v_t", "[forms][oracle]") {
  const Sizes s{2, 50, 3, 3, 4, 2};
  const auto seed = fresh_seed();
  CAPTURE(seed);
  auto in = random_inputs<double>(s, seed);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 50; ++t)
      for (Index h = 0; h < 3; ++h)
        for (Index l = 0; l < in.lam.dim(3); ++l) in.lam(b, t, h, l) = l == 0 ? 1.0 : 0.0;
  Tensor<double, 4> expected(in.v.shape());
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 50; ++t)
      for (Index h = 0; h < 3; ++h) {
        double qk = 0;
        for (Index i = 0; i < 4; ++i) qk += in.q(b, t, h, i) * in.k(b, t, h, i);
        for (Index j = 0; j < 2; ++j) expected(b, t, h, j) = qk * in.v(b, t, h, j);
      }
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const auto c = compare(form_name(f) + " vs diagonal", run(f, in, 4), expected);
    INFO(c.report());
    CHECK(c.max_rel <= 1e-14);
  }
}

TEST_CASE("special: a one-hot lam selects exactly the tokens of one Fenwick level", "[forms][oracle]") {
  // lam_t = e_l: o_t sums only over s with ell(t,s) = l, i.e. over bucket B_l(t).
  const Sizes s{1, 45, 1, 1, 3, 2};
  const int l_sel = GENERATE(1, 2, 3, 5);
  auto in = random_inputs<double>(s, 99);
  for (Index t = 0; t < 45; ++t)
    for (Index l = 0; l < in.lam.dim(3); ++l) in.lam(0, t, 0, l) = l == l_sel ? 1.0 : 0.0;
  Tensor<double, 4> expected(in.v.shape());
  for (Index t = 0; t < 45; ++t)
    for (const Bucket& bk : buckets(t)) {
      if (bk.level != l_sel) continue;
      for (Index u = bk.begin; u < bk.end; ++u) {
        double qk = 0, G = 0;
        for (Index i = 0; i < 3; ++i) qk += in.q(0, t, 0, i) * in.k(0, u, 0, i);
        for (Index r = u + 1; r <= t; ++r) G += in.g(0, r, 0);
        for (Index j = 0; j < 2; ++j) expected(0, t, 0, j) += std::exp(G) * qk * in.v(0, u, 0, j);
      }
    }
  CAPTURE(l_sel);
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const auto c = compare(form_name(f) + " vs bucket sum", run(f, in, 4), expected);
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);
  }
}
