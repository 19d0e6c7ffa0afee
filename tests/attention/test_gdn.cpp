// Log-linear Gated DeltaNet (SPEC.md §6): the naive (materialised) and recurrent forms agree,
// forward and every gradient, in double and float; central finite differences for every input
// (beta and lam included); with keys orthogonal to every earlier key the erase term vanishes
// and the operator is Mamba-2's applied to beta * v; the dg identity of SPEC.md §3.1; errors.
#include <loglinear/attention/gdn_naive.hpp>
#include <loglinear/attention/gdn_recurrent.hpp>
#include <loglinear/attention/naive.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/gdn_checks.hpp>

#include "../support/attention_gradcheck.hpp"
#include "../support/compare.hpp"
#include "../support/gdn_cases.hpp"
#include "../support/gradcheck.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

enum class GdnForm { naive, recurrent };

std::string name_of(GdnForm f) { return f == GdnForm::naive ? "naive" : "recurrent"; }

// Cases come from random_gdn_case (tests/support/gdn_cases.hpp): the Mamba-2 random inputs plus
// beta ~ U[0.05, 0.95], with L2-normalised keys (or, unit_keys = false, keys of length 0.5-1.4).

template <class Scalar>
Tensor<Scalar, 4> forward(GdnForm f, const GdnInputs<Scalar>& in) {
  Tensor<Scalar, 4> o(in.v.shape);
  if (f == GdnForm::naive) gdn_naive_forward<Scalar>(in, o);
  else gdn_recurrent_forward<Scalar>(in, o);
  return o;
}

template <class Scalar>
void backward(GdnForm f, const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
              const GdnGrads<Scalar>& gr) {
  if (f == GdnForm::naive) gdn_naive_backward<Scalar>(in, dout, gr);
  else gdn_recurrent_backward<Scalar>(in, dout, gr);
}

// The gradients start as NaN (nan_gdn_grads), so that a backward that adds where it should
// overwrite fails.
template <class Scalar>
GdnGradTensors<Scalar> grads_of(GdnForm f, const GdnCase<Scalar>& c) {
  GdnGradTensors<Scalar> gr = nan_gdn_grads<Scalar>(gdn_dims_of(c));
  backward<Scalar>(f, c.view(), c.base.dout, gr.views());
  return gr;
}

// Loss = sum(dout ⊙ o), whose gradients are exactly what backward(dout) returns.
double loss(GdnForm f, const GdnCase<double>& c) { return dot_loss(forward<double>(f, c.view()), c.base.dout); }

}  // namespace

TEST_CASE("gdn: unit_lower_inverse inverts I + A by forward substitution", "[gdn]") {
  const Index T = GENERATE(1, 2, 7, 20);
  std::mt19937_64 rng(T);
  std::normal_distribution<double> normal(0.0, 0.5);
  RowMatrix<double> A(T, T);
  for (Index i = 0; i < T * T; ++i) A.data()[i] = normal(rng);
  const RowMatrix<double> Tut = unit_lower_inverse<double>(A);
  const RowMatrix<double> X =
      RowMatrix<double>::Identity(T, T) + RowMatrix<double>(A.triangularView<Eigen::StrictlyLower>());
  CHECK((X * Tut - RowMatrix<double>::Identity(T, T)).cwiseAbs().maxCoeff() <= 1e-12);
  CHECK(Tut.diagonal().isOnes(0.0));
  CHECK(RowMatrix<double>(Tut.triangularView<Eigen::StrictlyUpper>()).isZero(0.0));
}

TEST_CASE("gdn: naive and recurrent agree, forward and every gradient, in double to 1e-10",
          "[gdn][cross]") {
  const Index T = GENERATE(1, 2, 3, 8, 13, 33);
  const auto [H, G] = GENERATE(table<Index, Index>({{3, 3}, {4, 2}, {2, 1}}));
  const Sizes s{2, T, H, G, 5, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  const auto c = random_gdn_case<double>(s, seed);
  const auto o = compare("o recurrent vs naive", forward(GdnForm::recurrent, c.view()),
                         forward(GdnForm::naive, c.view()));
  INFO(o.report());
  CHECK(o.max_rel <= 1e-10);
  for (const auto& r : compare_gdn_grads("recurrent vs naive", grads_of(GdnForm::recurrent, c),
                                     grads_of(GdnForm::naive, c))) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-10);
  }
}

TEST_CASE("gdn: float forms agree with the double definition to 1e-5", "[gdn][cross][float]") {
  const Index T = GENERATE(1, 7, 20);
  const auto [H, G] = GENERATE(table<Index, Index>({{2, 2}, {4, 2}}));
  const Sizes s{2, T, H, G, 4, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  const auto cd = random_gdn_case<double>(s, seed);
  const auto cf = random_gdn_case<float>(s, seed);
  const auto o_ref = forward(GdnForm::naive, cd.view());
  const auto g_ref = grads_of(GdnForm::naive, cd);
  for (GdnForm f : {GdnForm::naive, GdnForm::recurrent}) {
    const auto o = compare(name_of(f) + " float o", forward(f, cf.view()), o_ref);
    INFO(o.report());
    CHECK(o.max_rel <= 1e-5);
    for (const auto& r : compare_gdn_grads(name_of(f) + " float", grads_of(f, cf), g_ref)) {
      INFO(r.report());
      CHECK(r.max_rel <= 1e-5);
    }
  }
}

TEST_CASE("gdn: every gradient of both forms matches central finite differences",
          "[gdn][fd]") {
  const GdnForm form = GENERATE(GdnForm::naive, GdnForm::recurrent);
  const Index T = GENERATE(1, 5, 11);
  const Index G = GENERATE(1, 2);
  const bool unit_keys = GENERATE(true, false);
  const Sizes s{2, T, 2, G, 3, 2};
  const auto seed = fresh_seed();
  CAPTURE(name_of(form), describe(s), seed, unit_keys);
  auto c = random_gdn_case<double>(s, seed, unit_keys);
  for (auto& x : c.base.g.values()) x = std::min(x, -1e-2);  // FD steps keep g <= 0
  const auto gr = grads_of(form, c);
  auto L = [&] { return loss(form, c); };
  auto checks = gradcheck_attention(c.base, gr, L, seed);
  checks.push_back(gradcheck_attention_tensor("dbeta", c.beta.data(), gr.dbeta.data(),
                                              c.beta.size(), L, seed));
  for (const auto& r : checks) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("gdn: with keys orthogonal to every earlier key both forms equal Mamba-2 on beta * v",
          "[gdn][oracle]") {
  // One-hot keys k_t = c_t e_{p(t)} with distinct p(t) (T <= K): k_t . k_s = 0 for s < t, so
  // Akk = 0, Tut = I and every erase I - beta_t k_t k_t^T leaves earlier keys untouched.
  const Index T = GENERATE(1, 4, 7);
  const Index K = 7, H = 2, G = 1;
  const Sizes s{2, T, H, G, K, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  auto c = random_gdn_case<double>(s, seed);
  std::mt19937_64 rng(seed);
  for (Index b = 0; b < s.B; ++b) {
    std::vector<Index> p(K);
    for (Index i = 0; i < K; ++i) p[i] = i;
    std::shuffle(p.begin(), p.end(), rng);
    for (Index t = 0; t < T; ++t)
      for (Index i = 0; i < K; ++i) c.base.k(b, t, 0, i) = i == p[t] ? 0.5 + 0.1 * double(t) : 0.0;
  }
  // Mamba-2's operator on the same q, k, g, lam and v scaled by beta.
  auto m2 = c.base;
  for (Index b = 0; b < s.B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index h = 0; h < H; ++h)
        for (Index j = 0; j < s.V; ++j) m2.v(b, t, h, j) *= c.beta(b, t, h);
  Tensor<double, 4> o_m2(m2.v.shape());
  naive_forward<double>(m2.view(), o_m2);
  AttentionGradTensors<double> g_m2(gdn_dims_of(c));
  naive_backward<double>(m2.view(), m2.dout, g_m2.views());
  for (GdnForm f : {GdnForm::naive, GdnForm::recurrent}) {
    const auto o = compare(name_of(f) + " o vs Mamba-2 on beta v", forward(f, c.view()), o_m2);
    INFO(o.report());
    CHECK(o.max_rel <= 1e-12);
    // q, g and lam enter only through M, which is Mamba-2's here: their gradients agree too
    // (k's do not: the erase's derivative in k does not vanish with the erase itself).
    const auto gr = grads_of(f, c);
    for (const auto& r : {compare(name_of(f) + " dq", gr.dq, g_m2.dq),
                          compare(name_of(f) + " dg", gr.dg, g_m2.dg),
                          compare(name_of(f) + " dlam", gr.dlam, g_m2.dlam)}) {
      INFO(r.report());
      CHECK(r.max_rel <= 1e-12);
    }
  }
}

TEST_CASE("gdn: a repeated unit key with beta = 1 erases every earlier value at every level",
          "[gdn][oracle]") {
  // k_t = e for all t and beta = 1: I - e e^T annihilates every stored k_s = e, whatever level
  // holds it, so only the token's own write survives: o_t = lam_t[0] (q_t . e) v_t. In the
  // Mamba-2 operator every earlier token would still be read.
  const Index T = GENERATE(1, 2, 6, 13);
  const Sizes s{1, T, 2, 1, 3, 2};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  auto c = random_gdn_case<double>(s, seed);
  for (Index t = 0; t < T; ++t)
    for (Index i = 0; i < s.K; ++i) c.base.k(0, t, 0, i) = i == 1 ? 1.0 : 0.0;
  for (auto& x : c.beta.values()) x = 1.0;
  Tensor<double, 4> expected(c.base.v.shape());
  for (Index t = 0; t < T; ++t)
    for (Index h = 0; h < s.H; ++h)
      for (Index j = 0; j < s.V; ++j)
        expected(0, t, h, j) = c.base.lam(0, t, h, 0) * c.base.q(0, t, 0, 1) * c.base.v(0, t, h, j);
  for (GdnForm f : {GdnForm::naive, GdnForm::recurrent}) {
    const auto o = compare(name_of(f) + " o vs own write only", forward(f, c.view()), expected);
    INFO(o.report());
    CHECK(o.max_rel <= 1e-14);
  }
}

TEST_CASE("gdn: the dg identity of SPEC.md §3.1 holds", "[gdn][invariants]") {
  const GdnForm form = GENERATE(GdnForm::naive, GdnForm::recurrent);
  const Index T = GENERATE(1, 9, 40);
  const Index H = 3, V = 4;
  const Sizes s{2, T, H, 1, 3, V};
  const auto seed = fresh_seed();
  CAPTURE(name_of(form), T, seed);
  const auto c = random_gdn_case<double>(s, seed);
  const auto gr = grads_of(form, c);
  const auto o = forward(form, c.view());
  double scale = 1e-300;
  for (double x : gr.dg.values()) scale = std::max(scale, std::abs(x));
  for (Index b = 0; b < s.B; ++b)
    for (Index h = 0; h < H; ++h) {
      CHECK(gr.dg(b, 0, h) == 0.0);  // g_0 never multiplies anything
      double suffix = 0;
      for (Index t = T - 1; t >= 0; --t) {
        double out_o = 0, v_dv = 0, lam_dlam = 0;
        for (Index j = 0; j < V; ++j) {
          out_o += c.base.dout(b, t, h, j) * o(b, t, h, j);
          v_dv += c.base.v(b, t, h, j) * gr.dv(b, t, h, j);
        }
        for (Index l = 0; l < c.base.lam.dim(3); ++l)
          lam_dlam += c.base.lam(b, t, h, l) * gr.dlam(b, t, h, l);
        CAPTURE(b, h, t);
        // sum_l lam_t[l] dlam_t[l] = <dout_t, o_t>: o_t is linear in lam_t.
        CHECK(std::abs(lam_dlam - out_o) <= 1e-10 * (1 + std::abs(out_o)));
        suffix += out_o - v_dv;
        // dg_t = sum_{u >= t} (<dout_u, o_u> - <v_u, dv_u>) (the o/v form; SPEC.md §6).
        if (t >= 1) CHECK(std::abs(gr.dg(b, t, h) - suffix) <= 1e-10 * std::max(1.0, scale));
      }
      CHECK(std::abs(suffix) <= 1e-10 * std::max(1.0, scale));  // the full sum is dg_0 = 0
    }
  for (Index b = 0; b < s.B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index h = 0; h < H; ++h)
        for (Index l = num_levels(T); l < c.base.lam.dim(3); ++l) REQUIRE(gr.dlam(b, t, h, l) == 0.0);
}

namespace {

// Runs forward and backward of `form` and returns the message of the exception they throw
// (checking that both throw the same one, up to the name of o / dout).
std::string error_of(GdnForm form, const GdnInputs<double>& in, Shape<4> o_shape = {0, 0, 0, 0},
                     Shape<3> dbeta_shape = {0, 0, 0}) {
  if (o_shape == Shape<4>{0, 0, 0, 0}) o_shape = in.v.shape;
  std::string fwd, bwd;
  try {
    Tensor<double, 4> o(o_shape);
    if (form == GdnForm::naive) gdn_naive_forward<double>(in, o);
    else gdn_recurrent_forward<double>(in, o);
  } catch (const std::invalid_argument& e) {
    fwd = e.what();
  }
  try {
    const AttentionDims d{in.q.shape[0], in.q.shape[1], in.v.shape[2], in.q.shape[2],
                          in.q.shape[3], in.v.shape[3], in.lam.shape[3]};
    GdnGradTensors<double> grads(d);
    if (dbeta_shape != Shape<3>{0, 0, 0}) grads.dbeta = Tensor<double, 3>(dbeta_shape);
    Tensor<double, 4> dout(o_shape);
    backward<double>(form, in, dout, grads.views());
  } catch (const std::invalid_argument& e) {
    bwd = e.what();
  }
  if (bwd.rfind("dout:", 0) == 0) bwd = "o:" + bwd.substr(5);
  if (dbeta_shape == Shape<3>{0, 0, 0}) CHECK(fwd == bwd);
  return dbeta_shape == Shape<3>{0, 0, 0} ? fwd : bwd;
}

}  // namespace

TEST_CASE("gdn: both forms reject bad input with a message naming the argument",
          "[gdn][errors]") {
  const GdnForm form = GENERATE(GdnForm::naive, GdnForm::recurrent);
  CAPTURE(name_of(form));
  auto c = random_gdn_case<double>({2, 9, 4, 2, 3, 5, 5}, 1);
  GdnInputs<double> in = c.view();
  CHECK(error_of(form, in).empty());

  SECTION("beta above 1 or below 0") {
    const double bad = GENERATE(1.5, -0.25);
    c.beta(1, 3, 2) = bad;
    CHECK_THAT(error_of(form, c.view()),
               ContainsSubstring("beta: expected values in [0, 1], got " + std::to_string(bad)));
  }
  SECTION("beta exactly 0 and 1 are accepted") {
    c.beta(0, 0, 0) = 0.0;
    c.beta(1, 8, 3) = 1.0;
    CHECK(error_of(form, c.view()).empty());
  }
  SECTION("non-finite beta") {
    c.beta(0, 2, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THAT(error_of(form, c.view()), ContainsSubstring("beta: expected finite values"));
  }
  SECTION("beta of the wrong shape") {
    Tensor<double, 3> beta({2, 9, 3});
    in.beta = beta;
    CHECK_THAT(error_of(form, in), ContainsSubstring("beta: expected shape [2,9,4] = [B,T,H], got [2,9,3]"));
  }
  SECTION("a positive log-decay") {
    c.base.g(1, 3, 2) = 0.25;
    CHECK_THAT(error_of(form, c.view()), ContainsSubstring("g: expected log-decay values <= 0"));
  }
  SECTION("k of another shape than q") {
    Tensor<double, 4> k({2, 9, 2, 4});
    in.k = k;
    CHECK_THAT(error_of(form, in), ContainsSubstring("k: expected shape [2,9,2,3] (same as q)"));
  }
  SECTION("lam with fewer levels than num_levels(T)") {
    Tensor<double, 4> lam({2, 9, 4, 4});
    in.lam = lam;
    CHECK_THAT(error_of(form, in), ContainsSubstring("lam: expected shape [B,T,H,L]"));
  }
  SECTION("non-finite values in v and q") {
    c.base.v(0, 4, 1, 2) = std::numeric_limits<double>::infinity();
    CHECK_THAT(error_of(form, c.view()), ContainsSubstring("v: expected finite values"));
    c.base.v(0, 4, 1, 2) = 0;
    c.base.q(1, 0, 1, 0) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THAT(error_of(form, c.view()), ContainsSubstring("q: expected finite values"));
  }
  SECTION("an output of the wrong shape") {
    CHECK_THAT(error_of(form, in, {2, 9, 4, 4}), ContainsSubstring("o: expected shape [2,9,4,5]"));
  }
  SECTION("a gradient dbeta of the wrong shape") {
    CHECK_THAT(error_of(form, in, {0, 0, 0, 0}, {2, 9, 3}),
               ContainsSubstring("dbeta: expected shape [2,9,4] (as beta), got [2,9,3]"));
  }
  SECTION("a non-finite output gradient") {
    GdnGradTensors<double> grads(gdn_dims_of(c));
    Tensor<double, 4> dout(c.base.v.shape());
    dout(1, 1, 1, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(backward<double>(form, in, dout, grads.views()),
                      ContainsSubstring("dout: expected finite values"));
  }
}
