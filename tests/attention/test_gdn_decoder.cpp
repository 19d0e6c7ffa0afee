// The streaming Gated DeltaNet decoder (attention/gdn_decoder.hpp) equals the recurrent form on
// the whole sequence, its exported state resumes where it stopped, and bad steps throw naming
// the argument.
#include <loglinear/attention/gdn_decoder.hpp>
#include <loglinear/attention/gdn_naive.hpp>
#include <loglinear/attention/gdn_recurrent.hpp>

#include "../support/compare.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <random>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

struct Case {
  OwnedInputs<double> in;
  Tensor<double, 3> beta;
};

Case random_case(const Sizes& s, std::uint64_t seed) {
  Case c{random_inputs<double>(s, seed), Tensor<double, 3>({s.B, s.T, s.H})};
  std::mt19937_64 rng(seed + 1);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (auto& x : c.beta.values()) x = uniform(rng);
  return c;
}

// Feeds tokens [t_begin, t_end) to the decoder and writes their outputs into `o`.
void decode(GdnDecoder<double>& dec, const Case& c, Index t_begin, Index t_end,
            Tensor<double, 4>& o) {
  const auto& in = c.in;
  const Index B = in.v.dim(0), H = in.v.dim(2), G = in.q.dim(2), K = in.q.dim(3);
  const Index V = in.v.dim(3), L = in.lam.dim(3);
  Tensor<double, 3> q({B, G, K}), k({B, G, K}), v({B, H, V}), lam({B, H, L}), o_t({B, H, V});
  Tensor<double, 2> g({B, H}), beta({B, H});
  for (Index t = t_begin; t < t_end; ++t) {
    for (Index b = 0; b < B; ++b) {
      for (Index gr = 0; gr < G; ++gr)
        for (Index i = 0; i < K; ++i) {
          q(b, gr, i) = in.q(b, t, gr, i);
          k(b, gr, i) = in.k(b, t, gr, i);
        }
      for (Index h = 0; h < H; ++h) {
        g(b, h) = in.g(b, t, h);
        beta(b, h) = c.beta(b, t, h);
        for (Index j = 0; j < V; ++j) v(b, h, j) = in.v(b, t, h, j);
        for (Index l = 0; l < L; ++l) lam(b, h, l) = in.lam(b, t, h, l);
      }
    }
    dec.step(q, k, v, g, beta, lam, o_t);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index j = 0; j < V; ++j) o(b, t, h, j) = o_t(b, h, j);
  }
}

}  // namespace

TEST_CASE("gdn decoder: one token at a time equals the recurrent form, and resumes from its "
          "exported state", "[gdn][decoder]") {
  const Index T = GENERATE(1, 6, 19);
  const Sizes s{2, T, 4, 2, 3, 5};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  const auto c = random_case(s, seed);
  Tensor<double, 4> expected(c.in.v.shape());
  gdn_recurrent_forward<double>(GdnInputs<double>{c.in.view(), c.beta}, expected);

  GdnDecoder<double> whole(s.B, s.H, s.G, s.K, s.V);
  Tensor<double, 4> o(c.in.v.shape());
  decode(whole, c, 0, T, o);
  const auto r = compare("decoder vs recurrent", o, expected);
  INFO(r.report());
  CHECK(r.max_rel <= 1e-12);
  // The decoder shares GdnFenwickHeadState with the recurrent form; the naive form shares nothing.
  Tensor<double, 4> naive(c.in.v.shape());
  gdn_naive_forward<double>(GdnInputs<double>{c.in.view(), c.beta}, naive);
  const auto rn = compare("decoder vs naive", o, naive);
  INFO(rn.report());
  CHECK(rn.max_rel <= 1e-10);

  // Stop after any prefix, export, resume in a fresh decoder: the rest is unchanged.
  const Index split = GENERATE_COPY(Index(0), T / 2, T - 1);
  GdnDecoder<double> first(s.B, s.H, s.G, s.K, s.V);
  Tensor<double, 4> o2(c.in.v.shape());
  decode(first, c, 0, split, o2);
  GdnDecoder<double> resumed(first.state(), s.G);
  CHECK(resumed.tokens() == split);
  decode(resumed, c, split, T, o2);
  const auto r2 = compare("resumed decoder vs recurrent", o2, expected);
  INFO(r2.report());
  CHECK(r2.max_rel <= 1e-12);
}

TEST_CASE("gdn decoder: bad steps throw naming the argument and leave the state unchanged",
          "[gdn][decoder][errors]") {
  GdnDecoder<double> dec(1, 2, 1, 3, 2);
  Tensor<double, 3> q({1, 1, 3}), k({1, 1, 3}), v({1, 2, 2}), lam({1, 2, 1}), o({1, 2, 2});
  Tensor<double, 2> g({1, 2}), beta({1, 2});
  beta(0, 1) = 1.5;
  CHECK_THROWS_WITH(dec.step(q, k, v, g, beta, lam, o),
                    ContainsSubstring("beta_t: expected values in [0, 1], got 1.5"));
  beta(0, 1) = 0.5;
  Tensor<double, 2> beta_bad({1, 3});
  CHECK_THROWS_WITH(dec.step(q, k, v, g, beta_bad, lam, o),
                    ContainsSubstring("beta_t: expected shape [1,2] = [B,H], got [1,3]"));
  g(0, 0) = 0.5;
  CHECK_THROWS_WITH(dec.step(q, k, v, g, beta, lam, o), ContainsSubstring("g_t: expected log-decay"));
  g(0, 0) = -0.5;
  CHECK(dec.tokens() == 0);
  dec.step(q, k, v, g, beta, lam, o);
  CHECK(dec.tokens() == 1);
  CHECK_THROWS_WITH(dec.step(q, k, v, g, beta, lam, o),
                    ContainsSubstring("lam_t: expected shape [B,H,L] = [1,2,L] with L >= num_levels(2) = 2"));
  CHECK_THROWS_WITH(GdnDecoder<double>(1, 3, 2, 3, 2), ContainsSubstring("GdnDecoder: expected G to divide H"));
}
