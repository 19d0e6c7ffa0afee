// Handwritten backward passes of the three forms (docs/backward.md): finite differences in
// double, agreement between forms, float vs double, causality, the identities of SPEC.md §3.1,
// grouped q/k, long strongly decaying sequences, and independence of the thread count.
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/compare.hpp"
#include "../support/attention_gradcheck.hpp"
#include "../support/gradcheck.hpp"
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

TEST_CASE("backward: every gradient of every form matches central finite differences",
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

TEST_CASE("backward: the three forms give the same gradients to 1e-10", "[backward][cross]") {
  const Index T = GENERATE(1, 2, 17, 100, 257, 1000);
  const Index C = GENERATE(1, 8, 64);
  const Sizes s{2, T, 4, 2, 5, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), C, seed);
  const auto in = random_inputs<double>(s, seed);
  const auto ref = grads_of(Form::naive, in, C);
  for (Form f : {Form::recurrent, Form::chunked}) {
    const auto gr = grads_of(f, in, C);
    const std::string n = form_name(f) + " vs naive ";
    for (const auto& c : {compare(n + "dq", gr.dq, ref.dq), compare(n + "dk", gr.dk, ref.dk),
                          compare(n + "dv", gr.dv, ref.dv), compare(n + "dg", gr.dg, ref.dg),
                          compare(n + "dlam", gr.dlam, ref.dlam)}) {
      INFO(c.report());
      CHECK(c.max_rel <= 1e-10);
    }
  }
}

TEST_CASE("backward: float gradients agree with double to 1e-4", "[backward][float]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Index T = GENERATE(5, 130, 600);
  const Sizes s{2, T, 2, 1, 4, 6};
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), describe(s), seed);
  const auto g64 = grads_of(form, random_inputs<double>(s, seed), 32);
  const auto g32 = grads_of(form, random_inputs<float>(s, seed), 32);
  // dg is a reverse cumulative sum over up to 600 rows of differences of O(1) terms, the
  // worst-conditioned gradient; 1e-4 still sits ~100x above float's accumulated rounding.
  for (const auto& c : {compare("dq", g32.dq, g64.dq), compare("dk", g32.dk, g64.dk),
                        compare("dv", g32.dv, g64.dv), compare("dg", g32.dg, g64.dg),
                        compare("dlam", g32.dlam, g64.dlam)}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-4);
  }
}

TEST_CASE("backward: a loss on one output position gives exactly zero gradient to later inputs",
          "[backward][causality]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Index T = 77, t_loss = GENERATE(0, 31, 40, 76);
  const Sizes s{1, T, 2, 1, 3, 2};
  CAPTURE(form_name(form), t_loss);
  auto in = random_inputs<double>(s, 17);
  for (Index t = 0; t < T; ++t)
    for (Index h = 0; h < 2; ++h)
      for (Index j = 0; j < 2; ++j)
        if (t != t_loss) in.dout(0, t, h, j) = 0;
  const auto gr = grads_of(form, in, 8);
  for (Index t = t_loss + 1; t < T; ++t) {
    CAPTURE(t);
    for (Index i = 0; i < 3; ++i) REQUIRE(gr.dq(0, t, 0, i) == 0.0);
    for (Index i = 0; i < 3; ++i) REQUIRE(gr.dk(0, t, 0, i) == 0.0);
    for (Index h = 0; h < 2; ++h) {
      REQUIRE(gr.dg(0, t, h) == 0.0);
      for (Index j = 0; j < 2; ++j) REQUIRE(gr.dv(0, t, h, j) == 0.0);
      for (Index l = 0; l < in.lam.dim(3); ++l) REQUIRE(gr.dlam(0, t, h, l) == 0.0);
    }
  }
  // ... and non-zero gradient at the position itself (the test could not pass vacuously).
  CHECK(gr.dv(0, t_loss, 0, 0) != 0.0);
}

TEST_CASE("backward: the identities of SPEC.md §3.1 hold", "[backward][invariants]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Index T = GENERATE(1, 9, 200);
  const Index G = GENERATE(3, 1);
  const Index H = 3, K = 4, V = 5;
  const Sizes s{2, T, H, G, K, V};
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), T, G, seed);
  const auto in = random_inputs<double>(s, seed);
  const auto gr = grads_of(form, in, 16);
  Tensor<double, 4> o(in.v.shape());
  forward<double>(form, in.view(), ChunkedOptions{16}, o);
  double scale = 1e-300;
  for (double x : gr.dg.values()) scale = std::max(scale, std::abs(x));
  // Per (b, t, head): rho = <dout_t, o_t>, kappa = <v_t, dv_t>, the row and column sums of
  // P = M ⊙ dM (SPEC.md §3.1).
  Tensor<double, 3> rho({2, T, H}), kappa({2, T, H});
  for (Index b = 0; b < 2; ++b)
    for (Index h = 0; h < H; ++h) {
      // dg_0 = 0: g_0 never multiplies anything.
      CHECK(gr.dg(b, 0, h) == 0.0);
      double suffix = 0, total = 0;
      for (Index t = T - 1; t >= 0; --t) {
        double out_o = 0, v_dv = 0, lam_dlam = 0;
        for (Index j = 0; j < V; ++j) {
          out_o += in.dout(b, t, h, j) * o(b, t, h, j);
          v_dv += in.v(b, t, h, j) * gr.dv(b, t, h, j);
        }
        for (Index l = 0; l < in.lam.dim(3); ++l) lam_dlam += in.lam(b, t, h, l) * gr.dlam(b, t, h, l);
        rho(b, t, h) = out_o;
        kappa(b, t, h) = v_dv;
        CAPTURE(b, h, t);
        // sum_l lam_t[l] dlam_t[l] = <dout_t, o_t>.
        CHECK(std::abs(lam_dlam - out_o) <= 1e-10 * (1 + std::abs(out_o)));
        suffix += out_o - v_dv;
        total += out_o - v_dv;
        // dg_t = sum_{u>=t} (<dout_u, o_u> - <v_u, dv_u>), for t >= 1.
        if (t >= 1) CHECK(std::abs(gr.dg(b, t, h) - suffix) <= 1e-10 * scale);
      }
      // The full sum is dg_0, which must vanish: a real check of dG's row/column balance.
      CHECK(std::abs(total) <= 1e-10 * std::max(1.0, scale));
    }
  // q_t . dq_t = rho_t and k_t . dk_t = kappa_t (SPEC.md §3.1: dq_t = sum_s dS_ts k_s, so
  // q_t . dq_t = sum_s S_ts W_ts dM_ts = sum_s P_ts; dk_s = sum_t dS_ts q_t, so k_s . dk_s =
  // sum_t P_ts). dq, dk of a group are summed over its heads, hence so are rho and kappa.
  // Summed over t the two agree, sum_t k_t . dk_t = sum_t q_t . dq_t, because
  // sum_t (rho_t - kappa_t) = 0 (the dg_0 balance above); it is Euler's identity for o, which is
  // linear in q and in k, so both sums equal the loss sum_t <dout_t, o_t> of the group's heads.
  const Index heads_per_group = H / G;
  for (Index b = 0; b < 2; ++b)
    for (Index gi = 0; gi < G; ++gi) {
      double sum_q_dq = 0, sum_k_dk = 0, sum_abs = 0;
      for (Index t = 0; t < T; ++t) {
        double q_dq = 0, k_dk = 0, rho_t = 0, kappa_t = 0;
        for (Index i = 0; i < K; ++i) {
          q_dq += in.q(b, t, gi, i) * gr.dq(b, t, gi, i);
          k_dk += in.k(b, t, gi, i) * gr.dk(b, t, gi, i);
        }
        for (Index h = gi * heads_per_group; h < (gi + 1) * heads_per_group; ++h) {
          rho_t += rho(b, t, h);
          kappa_t += kappa(b, t, h);
        }
        CAPTURE(b, gi, t);
        CHECK(std::abs(q_dq - rho_t) <= 1e-10 * (1 + std::abs(rho_t)));
        CHECK(std::abs(k_dk - kappa_t) <= 1e-10 * (1 + std::abs(kappa_t)));
        sum_q_dq += q_dq;
        sum_k_dk += k_dk;
        sum_abs += std::abs(q_dq) + std::abs(k_dk);
      }
      CAPTURE(b, gi, sum_q_dq, sum_k_dk);
      CHECK(std::abs(sum_k_dk - sum_q_dq) <= 1e-10 * (1 + sum_abs));
    }
  // Levels past num_levels(T) are never read: exactly zero gradient.
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index h = 0; h < H; ++h)
        for (Index l = num_levels(T); l < in.lam.dim(3); ++l) REQUIRE(gr.dlam(b, t, h, l) == 0.0);
}

TEST_CASE("backward: with grouped q/k the gradients are the sums over the heads of each group",
          "[backward][groups]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Sizes grouped{2, 45, 4, 2, 3, 5};
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), seed);
  const auto in = random_inputs<double>(grouped, seed);
  // Per-head copy: q, k of group h / 2 replicated into head h.
  auto per_head = random_inputs<double>({2, 45, 4, 4, 3, 5, in.lam.dim(3)}, 0);
  per_head.v = in.v; per_head.g = in.g; per_head.lam = in.lam; per_head.dout = in.dout;
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 45; ++t)
      for (Index h = 0; h < 4; ++h)
        for (Index i = 0; i < 3; ++i) {
          per_head.q(b, t, h, i) = in.q(b, t, h / 2, i);
          per_head.k(b, t, h, i) = in.k(b, t, h / 2, i);
        }
  const auto gg = grads_of(form, in, 8);
  const auto gh = grads_of(form, per_head, 8);
  Tensor<double, 4> dq_sum(in.q.shape()), dk_sum(in.k.shape());
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < 45; ++t)
      for (Index h = 0; h < 4; ++h)
        for (Index i = 0; i < 3; ++i) {
          dq_sum(b, t, h / 2, i) += gh.dq(b, t, h, i);
          dk_sum(b, t, h / 2, i) += gh.dk(b, t, h, i);
        }
  for (const auto& c : {compare("dq", gg.dq, dq_sum), compare("dk", gg.dk, dk_sum),
                        compare("dv", gg.dv, gh.dv), compare("dg", gg.dg, gh.dg),
                        compare("dlam", gg.dlam, gh.dlam)}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);
  }
}

TEST_CASE("backward: long strongly decaying sequences give finite gradients", "[backward][numerics]") {
  const Form form = GENERATE(Form::recurrent, Form::chunked);
  const Sizes s{1, 16384, 1, 1, 4, 4};
  CAPTURE(form_name(form));
  const auto in = random_inputs<float>(s, 5, 5.0);  // g ~ -5: cumulative decay ~ -1e5
  const auto gr = grads_of(form, in, 64);
  for (const auto* t : {&gr.dq, &gr.dk, &gr.dv, &gr.dlam})
    for (float x : t->values()) REQUIRE(std::isfinite(x));
  for (float x : gr.dg.values()) REQUIRE(std::isfinite(x));
}

TEST_CASE("backward: over a long strongly decaying sequence chunked and recurrent agree in double",
          "[backward][numerics][cross]") {
  // The finiteness test's length and decay (T = 16384, g ~ -5), in double, with two heads
  // sharing q/k (G = 1) so that the group sum of dq, dk is exercised too. Both backward passes
  // take well under a second on one core at K = V = 4, so T is kept at full size. Both forms
  // only take exp of non-positive log-decay differences (chunk-local gamma, per-token a_t), so
  // nothing overflows, and the strong decay keeps every sum short: the forms differ only in
  // summation order (measured ~1e-14 normwise), so the 1e-10 of the other double cross-form
  // checks applies unchanged. dg, which the chunked form gets from a reverse cumulative sum
  // over all 16384 rows, is the deepest sum and still far inside it.
  const Sizes s{1, 16384, 2, 1, 4, 4};
  const auto in = random_inputs<double>(s, 5, 5.0);
  const auto rec = grads_of(Form::recurrent, in, 64);
  const auto chk = grads_of(Form::chunked, in, 64);
  for (const auto& c : {compare("dq", chk.dq, rec.dq), compare("dk", chk.dk, rec.dk),
                        compare("dv", chk.dv, rec.dv), compare("dg", chk.dg, rec.dg),
                        compare("dlam", chk.dlam, rec.dlam)}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-10);
  }
}

TEST_CASE("backward: one and two threads give bit-identical results with one q/k group",
          "[backward][threads]") {
  // B = 1, G = 1, H = 4: the OpenMP split is over the four (batch, head) pairs (a split over
  // (batch, group) would put everything on one thread), and in the backward the four heads'
  // shares of dq, dk are reduced in a fixed order afterwards, whatever the thread count.
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Sizes s{1, 300, 4, 1, 5, 3};
  CAPTURE(form_name(form));
  const auto in = random_inputs<double>(s, 23);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Tensor<double, 4> o1(in.v.shape());
  forward<double>(form, in.view(), ChunkedOptions{16}, o1);
  const auto g1 = grads_of(form, in, 16);
  omp_set_num_threads(2);
  Tensor<double, 4> o2(in.v.shape());
  forward<double>(form, in.view(), ChunkedOptions{16}, o2);
  const auto g2 = grads_of(form, in, 16);
  omp_set_num_threads(saved);
  CHECK(o1.values() == o2.values());
  CHECK(g1.dq.values() == g2.dq.values());
  CHECK(g1.dk.values() == g2.dk.values());
  CHECK(g1.dv.values() == g2.dv.values());
  CHECK(g1.dg.values() == g2.dg.values());
  CHECK(g1.dlam.values() == g2.dlam.values());
  // ... and the reduced dq, dk are the full group sums (checked against the naive form).
  if (form != Form::naive) {
    const auto ref = grads_of(Form::naive, in, 16);
    for (const auto& c : {compare("dq", g2.dq, ref.dq), compare("dk", g2.dk, ref.dk)}) {
      INFO(c.report());
      CHECK(c.max_rel <= 1e-10);
    }
  }
}
