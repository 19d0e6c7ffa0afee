// The streaming decoder (attention/decoder.hpp) equals the full forward, keeps O(log T) memory,
// and its state round-trips through the recurrent and chunked forms.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/decoder.hpp>
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/compare.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <limits>
#include <string>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

// Feeds tokens [t_begin, t_end) of `in` to the decoder and writes their outputs into `o`.
void decode(Decoder<double>& dec, const OwnedInputs<double>& in, Index t_begin, Index t_end,
            Tensor<double, 4>& o) {
  const Index B = in.v.dim(0), H = in.v.dim(2), G = in.q.dim(2), K = in.q.dim(3);
  const Index V = in.v.dim(3), L = in.lam.dim(3);
  Tensor<double, 3> q({B, G, K}), k({B, G, K}), v({B, H, V}), lam({B, H, L}), o_t({B, H, V});
  Tensor<double, 2> g({B, H});
  for (Index t = t_begin; t < t_end; ++t) {
    for (Index b = 0; b < B; ++b) {
      for (Index gr = 0; gr < G; ++gr)
        for (Index i = 0; i < K; ++i) {
          q(b, gr, i) = in.q(b, t, gr, i);
          k(b, gr, i) = in.k(b, t, gr, i);
        }
      for (Index h = 0; h < H; ++h) {
        g(b, h) = in.g(b, t, h);
        for (Index j = 0; j < V; ++j) v(b, h, j) = in.v(b, t, h, j);
        for (Index l = 0; l < L; ++l) lam(b, h, l) = in.lam(b, t, h, l);
      }
    }
    dec.step(q, k, v, g, lam, o_t);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index j = 0; j < V; ++j) o(b, t, h, j) = o_t(b, h, j);
  }
}

// Tokens [t_begin, t_end) of `in` as inputs of their own (same allocated level count L).
OwnedInputs<double> slice_time(const OwnedInputs<double>& in, Index t_begin, Index t_end) {
  const Index B = in.v.dim(0), H = in.v.dim(2), G = in.q.dim(2), K = in.q.dim(3);
  const Index V = in.v.dim(3), L = in.lam.dim(3), T = t_end - t_begin;
  auto out = random_inputs<double>({B, T, H, G, K, V, L}, 0);
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < T; ++t) {
      for (Index gr = 0; gr < G; ++gr)
        for (Index i = 0; i < K; ++i) {
          out.q(b, t, gr, i) = in.q(b, t_begin + t, gr, i);
          out.k(b, t, gr, i) = in.k(b, t_begin + t, gr, i);
        }
      for (Index h = 0; h < H; ++h) {
        out.g(b, t, h) = in.g(b, t_begin + t, h);
        for (Index j = 0; j < V; ++j) {
          out.v(b, t, h, j) = in.v(b, t_begin + t, h, j);
          out.dout(b, t, h, j) = in.dout(b, t_begin + t, h, j);
        }
        for (Index l = 0; l < L; ++l) out.lam(b, t, h, l) = in.lam(b, t_begin + t, h, l);
      }
    }
  return out;
}

// Rows [t_begin, t_end) of an output [B,T,H,V].
Tensor<double, 4> rows(const Tensor<double, 4>& o, Index t_begin, Index t_end) {
  Tensor<double, 4> out({o.dim(0), t_end - t_begin, o.dim(2), o.dim(3)});
  for (Index b = 0; b < o.dim(0); ++b)
    for (Index t = t_begin; t < t_end; ++t)
      for (Index h = 0; h < o.dim(2); ++h)
        for (Index j = 0; j < o.dim(3); ++j) out(b, t - t_begin, h, j) = o(b, t, h, j);
  return out;
}

}  // namespace

TEST_CASE("decoder: one token at a time equals the full forward", "[decoder][cross]") {
  const Index T = GENERATE(1, 2, 5, 64, 333, 1000);
  const Sizes s{2, T, 4, 2, 3, 5};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  const auto in = random_inputs<double>(s, seed);
  Tensor<double, 4> o_full(in.v.shape()), o_dec(in.v.shape());
  chunked_forward<double>(in.view(), {16}, o_full);
  Decoder<double> dec(2, 4, 2, 3, 5);
  decode(dec, in, 0, T, o_dec);
  const auto c = compare("decoder vs chunked", o_dec, o_full);
  INFO(c.report());
  CHECK(c.max_rel <= 1e-10);
  CHECK(dec.tokens() == T);
  // Memory: one K x V state per live level, never per token.
  CHECK(dec.state_bytes() == 2 * 4 * num_levels(T) * 3 * 5 * Index(sizeof(double)));
}

TEST_CASE("decoder: a prefix's state continues in the recurrent and chunked forms, and back",
          "[decoder][state]") {
  const Index T0 = GENERATE(1, 7, 64, 100);
  const Index T1 = GENERATE(1, 9, 130);
  const Index C = GENERATE(4, 64);
  const Index T2 = 37;  // tokens decoded after resuming from a form's final state
  const Sizes s{2, T0 + T1 + T2, 2, 1, 3, 4};
  const auto seed = fresh_seed();
  CAPTURE(T0, T1, C, seed);
  // `whole` is the full sequence; `in` its first T0 + T1 tokens.
  const auto whole = random_inputs<double>(s, seed);
  const auto in = slice_time(whole, 0, T0 + T1);
  Tensor<double, 4> o_whole(whole.v.shape()), o_full(in.v.shape());
  FenwickState<double> whole_final, full_final;
  recurrent_forward<double>(whole.view(), o_whole, {nullptr, &whole_final});
  recurrent_forward<double>(in.view(), o_full, {nullptr, &full_final});

  // Decode the prefix, export, continue the rest with each form.
  Decoder<double> dec(2, 2, 1, 3, 4);
  Tensor<double, 4> o_dec(in.v.shape());
  decode(dec, in, 0, T0, o_dec);
  const FenwickState<double> prefix = dec.state();
  CHECK(prefix.tokens == T0);

  const auto suffix = slice_time(in, T0, T0 + T1);
  Tensor<double, 4> o_rec({2, T1, 2, 4}), o_chk({2, T1, 2, 4});
  FenwickState<double> rec_final, chk_final;
  recurrent_forward<double>(suffix.view(), o_rec, {&prefix, &rec_final});
  chunked_forward<double>(suffix.view(), {C}, o_chk, {&prefix, &chk_final});

  const auto expected = rows(o_full, T0, T0 + T1);
  for (const auto& c : {compare("recurrent resumed", o_rec, expected),
                        compare("chunked resumed", o_chk, expected),
                        compare("recurrent final state", rec_final.S, full_final.S),
                        compare("chunked final state", chk_final.S, full_final.S)}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-10);
  }
  // And each form's final state resumes the decoder: stepping it over the next T2 tokens gives
  // the rows of the forward over the whole sequence, and its state ends as that forward's.
  const auto expected_tail = rows(o_whole, T0 + T1, T0 + T1 + T2);
  for (const auto* st : {&chk_final, &rec_final}) {
    const std::string from = st == &chk_final ? "chunked" : "recurrent";
    Decoder<double> resumed(*st, 1);
    CHECK(resumed.tokens() == T0 + T1);
    Tensor<double, 4> o_tail(whole.v.shape());
    decode(resumed, whole, T0 + T1, T0 + T1 + T2, o_tail);
    CHECK(resumed.tokens() == T0 + T1 + T2);
    const FenwickState<double> tail_final = resumed.state();
    for (const auto& c :
         {compare("decoder resumed from " + from, rows(o_tail, T0 + T1, T0 + T1 + T2), expected_tail),
          compare("its final state, from " + from, tail_final.S, whole_final.S)}) {
      INFO(c.report());
      CHECK(c.max_rel <= 1e-10);
    }
  }
}

TEST_CASE("decoder: bad steps throw naming the argument and leave the state unchanged",
          "[decoder][errors]") {
  Decoder<double> dec(1, 2, 1, 3, 4);
  Tensor<double, 3> q({1, 1, 3}), k({1, 1, 3}), v({1, 2, 4}), lam({1, 2, 1}), o({1, 2, 4});
  Tensor<double, 2> g({1, 2});
  dec.step(q, k, v, g, lam, o);  // t = 0 needs 1 level
  CHECK_THROWS_WITH(dec.step(q, k, v, g, lam, o),  // t = 1 needs 2
                    ContainsSubstring("lam_t: expected shape [B,H,L] = [1,2,L] with L >= "
                                      "num_levels(2) = 2, got [1,2,1]"));
  CHECK(dec.tokens() == 1);
  Tensor<double, 3> lam2({1, 2, 2});
  g(0, 1) = 0.5;
  CHECK_THROWS_WITH(dec.step(q, k, v, g, lam2, o),
                    ContainsSubstring("g_t: expected log-decay values <= 0, got 0.5"));
  g(0, 1) = 0;
  Tensor<double, 3> v_bad({1, 2, 5});
  CHECK_THROWS_WITH(dec.step(q, k, v_bad, g, lam2, o),
                    ContainsSubstring("v_t: expected shape [1,2,4] = [B,H,V], got [1,2,5]"));
  Tensor<double, 3> k_bad({1, 2, 3});
  CHECK_THROWS_WITH(dec.step(q, k_bad, v, g, lam2, o),
                    ContainsSubstring("k_t: expected shape [1,1,3] = [B,G,K], got [1,2,3]"));
  Tensor<double, 3> o_bad({1, 1, 4});
  CHECK_THROWS_WITH(dec.step(q, k, v, g, lam2, o_bad),
                    ContainsSubstring("o_t: expected shape [1,2,4] = [B,H,V], got [1,1,4]"));
  q(0, 0, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(dec.step(q, k, v, g, lam2, o), ContainsSubstring("q_t: expected finite values"));
  q(0, 0, 1) = 0;
  CHECK(dec.tokens() == 1);
  CHECK_NOTHROW(dec.step(q, k, v, g, lam2, o));
  CHECK_THROWS_WITH(Decoder<double>(1, 3, 2, 4, 4),
                    ContainsSubstring("Decoder: expected G to divide H = 3, got G = 2"));
  CHECK_THROWS_WITH(Decoder<double>(0, 1, 1, 4, 4),
                    ContainsSubstring("Decoder: expected B, H, G, K, V >= 1, got B=0"));
  // A state whose level count does not match its token count.
  FenwickState<double> st;
  st.tokens = 5;  // num_levels(5) = 4 levels
  st.S = Tensor<double, 5>({1, 2, 3, 3, 4});
  CHECK_THROWS_WITH(Decoder<double>(st, 1),
                    ContainsSubstring("state.S: expected shape [1,2,4,3,4] = "
                                      "[B,H,num_levels(tokens),K,V], got [1,2,3,3,4]"));
}
