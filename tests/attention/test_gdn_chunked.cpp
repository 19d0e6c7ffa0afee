// The chunked (WY/UT) form of log-linear Gated DeltaNet (attention/gdn_chunked.hpp) against the
// naive and recurrent forms, forward and every gradient, in double and float, for chunk sizes
// 1 .. 64 (T = 1, T not a multiple of C, G > 1, K != V); central finite differences for every
// input of its backward; the one-hot-key reduction to the Mamba-2 chunked form on beta * v; the
// erase acting across chunks at every level; errors naming the argument.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/gdn_chunked.hpp>
#include <loglinear/attention/gdn_naive.hpp>
#include <loglinear/attention/gdn_recurrent.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/attention_gradcheck.hpp"
#include "../support/compare.hpp"
#include "../support/gdn_cases.hpp"
#include "../support/gradcheck.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

enum class GdnForm { naive, recurrent, chunked };

template <class Scalar>
Tensor<Scalar, 4> forward(GdnForm f, const GdnInputs<Scalar>& in, Index C = 0) {
  Tensor<Scalar, 4> o(in.v.shape);
  if (f == GdnForm::naive) gdn_naive_forward<Scalar>(in, o);
  else if (f == GdnForm::recurrent) gdn_recurrent_forward<Scalar>(in, o);
  else gdn_chunked_forward<Scalar>(in, ChunkedOptions{C}, o);
  return o;
}

// Every gradient of `f`, written into NaN-prefilled storage (gdn_cases.hpp).
template <class Scalar>
GdnGradTensors<Scalar> grads_of(GdnForm f, const GdnCase<Scalar>& c, Index C = 0) {
  GdnGradTensors<Scalar> gr = nan_gdn_grads<Scalar>(gdn_dims_of(c));
  if (f == GdnForm::naive) gdn_naive_backward<Scalar>(c.view(), c.base.dout, gr.views());
  else if (f == GdnForm::recurrent) gdn_recurrent_backward<Scalar>(c.view(), c.base.dout, gr.views());
  else gdn_chunked_backward<Scalar>(c.view(), ChunkedOptions{C}, c.base.dout, gr.views());
  return gr;
}

// The chunk sizes worth running at length T: 1, 2, 4, 16, 64 up to the first one >= T (larger
// ones are clamped to it and would repeat it).
std::vector<Index> chunk_sizes_for(Index T) {
  std::vector<Index> sizes;
  for (Index C : {1, 2, 4, 16, 64}) {
    sizes.push_back(C);
    if (C >= T) break;
  }
  return sizes;
}

}  // namespace

TEST_CASE("gdn chunked: agrees with naive and recurrent, forward and every gradient, in double "
          "to 1e-10",
          "[gdn][gdn_chunked][cross]") {
  const Index T = GENERATE(1, 2, 3, 13, 33, 70);
  const auto [H, G] = GENERATE(table<Index, Index>({{3, 3}, {4, 2}, {2, 1}}));
  const bool unit_keys = GENERATE(true, false);
  const Sizes s{2, T, H, G, 5, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed, unit_keys);
  const auto c = random_gdn_case<double>(s, seed, unit_keys);
  const auto o_naive = forward(GdnForm::naive, c.view());
  const auto o_rec = forward(GdnForm::recurrent, c.view());
  const auto g_naive = grads_of(GdnForm::naive, c);
  const auto g_rec = grads_of(GdnForm::recurrent, c);
  for (Index C : chunk_sizes_for(T)) {
    CAPTURE(C);
    const auto o = forward(GdnForm::chunked, c.view(), C);
    const auto gr = grads_of(GdnForm::chunked, c, C);
    std::vector<Comparison> all = {compare("o chunked vs naive", o, o_naive),
                                   compare("o chunked vs recurrent", o, o_rec)};
    for (const auto& r : compare_gdn_grads("chunked vs naive", gr, g_naive)) all.push_back(r);
    for (const auto& r : compare_gdn_grads("chunked vs recurrent", gr, g_rec)) all.push_back(r);
    for (const auto& r : all) {
      INFO(r.report());
      CHECK(r.max_rel <= 1e-10);
    }
  }
}

TEST_CASE("gdn chunked: float agrees with the double definition to 1e-5", "[gdn][gdn_chunked][float]") {
  // Bound: float's unit roundoff is 6e-8. Every quantity of the chunked form is a sum of at most
  // T + C products of O(1) factors (unit keys and beta <= 1 keep every transition a contraction,
  // so |Tut_ij| = |beta_i k_i^T (erases) k_j| <= 1 and the WY factors stay O(1)), and the normwise
  // error is measured against the largest entry: a few hundred roundoffs at T = 45 is ~1e-5 at
  // worst. Measured worst over 9 runs: 1.7e-6 (dg), about 1e-6 for the others.
  const Index T = GENERATE(1, 7, 20, 45);
  const auto [H, G] = GENERATE(table<Index, Index>({{2, 2}, {4, 2}}));
  const Sizes s{2, T, H, G, 4, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  const auto cd = random_gdn_case<double>(s, seed);
  const auto cf = random_gdn_case<float>(s, seed);
  const auto o_ref = forward(GdnForm::naive, cd.view());
  const auto g_ref = grads_of(GdnForm::naive, cd);
  for (Index C : chunk_sizes_for(T)) {
    CAPTURE(C);
    const auto o = compare("chunked float o", forward(GdnForm::chunked, cf.view(), C), o_ref);
    INFO(o.report());
    CHECK(o.max_rel <= 1e-5);
    for (const auto& r : compare_gdn_grads("chunked float", grads_of(GdnForm::chunked, cf, C), g_ref)) {
      INFO(r.report());
      CHECK(r.max_rel <= 1e-5);
    }
  }
}

TEST_CASE("gdn chunked: every gradient matches central finite differences", "[gdn][gdn_chunked][fd]") {
  const Index T = GENERATE(1, 6, 11, 19);
  const Index C = GENERATE(1, 2, 4);
  const Index G = GENERATE(1, 2);
  const bool unit_keys = GENERATE(true, false);
  const Sizes s{2, T, 2, G, 3, 2};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), C, seed, unit_keys);
  auto c = random_gdn_case<double>(s, seed, unit_keys);
  for (auto& x : c.base.g.values()) x = std::min(x, -1e-2);  // FD steps keep g <= 0
  const auto gr = grads_of(GdnForm::chunked, c, C);
  auto L = [&] { return dot_loss(forward(GdnForm::chunked, c.view(), C), c.base.dout); };
  auto checks = gradcheck_attention(c.base, gr, L, seed);
  checks.push_back(gradcheck_attention_tensor("dbeta", c.beta.data(), gr.dbeta.data(),
                                              c.beta.size(), L, seed));
  for (const auto& r : checks) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("gdn chunked: with keys orthogonal to every earlier key it equals the Mamba-2 chunked "
          "form on beta * v",
          "[gdn][gdn_chunked][oracle]") {
  // One-hot keys k_t = c_t e_{p(t)} with distinct p(t) (T <= K): Akk = 0, Tut = I, and no erase
  // touches an earlier key, inside a chunk or in the level states.
  const Index T = GENERATE(1, 4, 7);
  const Index C = GENERATE(1, 2, 4);
  const Index K = 7, H = 2, G = 1;
  const Sizes s{2, T, H, G, K, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), C, seed);
  auto c = random_gdn_case<double>(s, seed);
  std::mt19937_64 rng(seed);
  for (Index b = 0; b < s.B; ++b) {
    std::vector<Index> p(K);
    for (Index i = 0; i < K; ++i) p[i] = i;
    std::shuffle(p.begin(), p.end(), rng);
    for (Index t = 0; t < T; ++t)
      for (Index i = 0; i < K; ++i) c.base.k(b, t, 0, i) = i == p[t] ? 0.5 + 0.1 * double(t) : 0.0;
  }
  auto m2 = c.base;
  for (Index b = 0; b < s.B; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index h = 0; h < H; ++h)
        for (Index j = 0; j < s.V; ++j) m2.v(b, t, h, j) *= c.beta(b, t, h);
  Tensor<double, 4> o_m2(m2.v.shape());
  chunked_forward<double>(m2.view(), ChunkedOptions{C}, o_m2);
  AttentionGradTensors<double> g_m2(gdn_dims_of(c));
  chunked_backward<double>(m2.view(), ChunkedOptions{C}, m2.dout, g_m2.views());
  const auto o = compare("o vs Mamba-2 chunked on beta v", forward(GdnForm::chunked, c.view(), C), o_m2);
  INFO(o.report());
  CHECK(o.max_rel <= 1e-12);
  // q, g and lam enter only through M, which is Mamba-2's here (k's gradient differs: the
  // erase's derivative in k does not vanish with the erase itself).
  const auto gr = grads_of(GdnForm::chunked, c, C);
  for (const auto& r : {compare("dq", gr.dq, g_m2.dq), compare("dg", gr.dg, g_m2.dg),
                        compare("dlam", gr.dlam, g_m2.dlam)}) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-12);
  }
}

TEST_CASE("gdn chunked: a repeated unit key with beta = 1 erases every earlier value in every chunk "
          "and level",
          "[gdn][gdn_chunked][oracle]") {
  // k_t = e and beta_t = 1 for all t: I - e e^T annihilates every stored k_s = e, whether it sits
  // in the chunk's own block or in a level state written chunks ago, so o_t = lam_t[0] (q_t . e) v_t.
  const Index T = GENERATE(1, 2, 6, 13, 35);
  const Index C = GENERATE(1, 2, 4, 16);
  const Sizes s{1, T, 2, 1, 3, 2};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), C, seed);
  auto c = random_gdn_case<double>(s, seed);
  for (Index t = 0; t < T; ++t)
    for (Index i = 0; i < s.K; ++i) c.base.k(0, t, 0, i) = i == 1 ? 1.0 : 0.0;
  for (auto& x : c.beta.values()) x = 1.0;
  Tensor<double, 4> expected(c.base.v.shape());
  for (Index t = 0; t < T; ++t)
    for (Index h = 0; h < s.H; ++h)
      for (Index j = 0; j < s.V; ++j)
        expected(0, t, h, j) = c.base.lam(0, t, h, 0) * c.base.q(0, t, 0, 1) * c.base.v(0, t, h, j);
  const auto o = compare("o vs own write only", forward(GdnForm::chunked, c.view(), C), expected);
  INFO(o.report());
  CHECK(o.max_rel <= 1e-14);
}

TEST_CASE("gdn chunked: exact zeros (dg_0, unread levels) and chunk sizes above T", "[gdn][gdn_chunked]") {
  const Index T = GENERATE(1, 5, 24);
  const Sizes s{2, T, 2, 1, 3, 4};
  const auto seed = fresh_seed();
  CAPTURE(T, seed);
  const auto c = random_gdn_case<double>(s, seed);
  const Index C_eff = Index{1} << bit_width(static_cast<std::uint64_t>(T - 1));  // bit_ceil(T)
  const auto gr = grads_of(GdnForm::chunked, c, 4);
  for (Index b = 0; b < s.B; ++b)
    for (Index h = 0; h < s.H; ++h) {
      CHECK(gr.dg(b, 0, h) == 0.0);  // g_0 never multiplies anything
      for (Index t = 0; t < T; ++t)
        for (Index l = num_levels(T); l < c.base.lam.dim(3); ++l) CHECK(gr.dlam(b, t, h, l) == 0.0);
    }
  // A chunk size above T is clamped to bit_ceil(T): bit-identical forward and gradients.
  const Index huge = Index{1} << 40;
  const auto o_huge = forward(GdnForm::chunked, c.view(), huge);
  CHECK(compare("o, C = 2^40 vs bit_ceil(T)", o_huge, forward(GdnForm::chunked, c.view(), C_eff)).max_rel == 0.0);
  for (const auto& r : compare_gdn_grads("C = 2^40 vs bit_ceil(T)", grads_of(GdnForm::chunked, c, huge),
                                         grads_of(GdnForm::chunked, c, C_eff))) {
    INFO(r.report());
    CHECK(r.max_rel == 0.0);
  }
}

namespace {

// Runs forward and backward of the chunked form and returns the message they throw (checking
// that both throw the same one, up to the name of o / dout, unless only the backward can fail).
std::string chunked_error(const GdnInputs<double>& in, Index C, Shape<4> o_shape = {0, 0, 0, 0},
                          Shape<3> dbeta_shape = {0, 0, 0}) {
  if (o_shape == Shape<4>{0, 0, 0, 0}) o_shape = in.v.shape;
  std::string fwd, bwd;
  try {
    Tensor<double, 4> o(o_shape);
    gdn_chunked_forward<double>(in, ChunkedOptions{C}, o);
  } catch (const std::invalid_argument& e) {
    fwd = e.what();
  }
  try {
    const AttentionDims d{in.q.shape[0], in.q.shape[1], in.v.shape[2], in.q.shape[2],
                          in.q.shape[3], in.v.shape[3], in.lam.shape[3]};
    GdnGradTensors<double> grads(d);
    if (dbeta_shape != Shape<3>{0, 0, 0}) grads.dbeta = Tensor<double, 3>(dbeta_shape);
    Tensor<double, 4> dout(o_shape);
    gdn_chunked_backward<double>(in, ChunkedOptions{C}, dout, grads.views());
  } catch (const std::invalid_argument& e) {
    bwd = e.what();
  }
  if (bwd.rfind("dout:", 0) == 0) bwd = "o:" + bwd.substr(5);
  if (dbeta_shape == Shape<3>{0, 0, 0}) CHECK(fwd == bwd);
  return dbeta_shape == Shape<3>{0, 0, 0} ? fwd : bwd;
}

}  // namespace

TEST_CASE("gdn chunked: rejects bad arguments with a message naming the argument",
          "[gdn][gdn_chunked][errors]") {
  auto c = random_gdn_case<double>({2, 9, 4, 2, 3, 5, 5}, 1);
  GdnInputs<double> in = c.view();
  CHECK(chunked_error(in, 4).empty());

  SECTION("a chunk size that is not a power of two >= 1") {
    const Index C = GENERATE(0, 3, 6, 48, -4);
    CHECK_THAT(chunked_error(in, C),
               ContainsSubstring("chunk_size: expected a power of two >= 1, got " + std::to_string(C)));
  }
  SECTION("beta above 1 or below 0") {
    const double bad = GENERATE(1.5, -0.25);
    c.beta(1, 3, 2) = bad;
    CHECK_THAT(chunked_error(c.view(), 4),
               ContainsSubstring("beta: expected values in [0, 1], got " + std::to_string(bad)));
  }
  SECTION("beta of the wrong shape") {
    Tensor<double, 3> beta({2, 9, 3});
    in.beta = beta;
    CHECK_THAT(chunked_error(in, 2), ContainsSubstring("beta: expected shape [2,9,4] = [B,T,H], got [2,9,3]"));
  }
  SECTION("a positive log-decay") {
    c.base.g(1, 3, 2) = 0.25;
    CHECK_THAT(chunked_error(c.view(), 2), ContainsSubstring("g: expected log-decay values <= 0"));
  }
  SECTION("lam with fewer levels than num_levels(T)") {
    Tensor<double, 4> lam({2, 9, 4, 4});
    in.lam = lam;
    CHECK_THAT(chunked_error(in, 2), ContainsSubstring("lam: expected shape [B,T,H,L]"));
  }
  SECTION("an output of the wrong shape") {
    CHECK_THAT(chunked_error(in, 4, {2, 9, 4, 4}), ContainsSubstring("o: expected shape [2,9,4,5]"));
  }
  SECTION("a gradient dbeta of the wrong shape") {
    CHECK_THAT(chunked_error(in, 4, {0, 0, 0, 0}, {2, 9, 3}),
               ContainsSubstring("dbeta: expected shape [2,9,4] (as beta), got [2,9,3]"));
  }
  SECTION("a non-finite output gradient") {
    GdnGradTensors<double> grads(gdn_dims_of(c));
    Tensor<double, 4> dout(c.base.v.shape());
    dout(1, 1, 1, 1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(gdn_chunked_backward<double>(in, ChunkedOptions{4}, dout, grads.views()),
                      ContainsSubstring("dout: expected finite values"));
  }
}
