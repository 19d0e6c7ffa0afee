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

using namespace loglinear;
using namespace loglinear::test;

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
  const Sizes s{2, T0 + T1, 2, 1, 3, 4};
  const auto seed = fresh_seed();
  CAPTURE(T0, T1, C, seed);
  const auto in = random_inputs<double>(s, seed);
  Tensor<double, 4> o_full(in.v.shape());
  FenwickState<double> full_final;
  recurrent_forward<double>(in.view(), o_full, {nullptr, &full_final});

  // Decode the prefix, export, continue the rest with each form.
  Decoder<double> dec(2, 2, 1, 3, 4);
  Tensor<double, 4> o_dec(in.v.shape());
  decode(dec, in, 0, T0, o_dec);
  const FenwickState<double> prefix = dec.state();
  CHECK(prefix.tokens == T0);

  // Slice the suffix inputs [T0, T0+T1).
  auto suffix = random_inputs<double>({2, T1, 2, 1, 3, 4, in.lam.dim(3)}, 0);
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < T1; ++t) {
      for (Index i = 0; i < 3; ++i) {
        suffix.q(b, t, 0, i) = in.q(b, T0 + t, 0, i);
        suffix.k(b, t, 0, i) = in.k(b, T0 + t, 0, i);
      }
      for (Index h = 0; h < 2; ++h) {
        suffix.g(b, t, h) = in.g(b, T0 + t, h);
        for (Index j = 0; j < 4; ++j) suffix.v(b, t, h, j) = in.v(b, T0 + t, h, j);
        for (Index l = 0; l < in.lam.dim(3); ++l) suffix.lam(b, t, h, l) = in.lam(b, T0 + t, h, l);
      }
    }
  Tensor<double, 4> o_rec({2, T1, 2, 4}), o_chk({2, T1, 2, 4});
  FenwickState<double> rec_final, chk_final;
  recurrent_forward<double>(suffix.view(), o_rec, {&prefix, &rec_final});
  chunked_forward<double>(suffix.view(), {C}, o_chk, {&prefix, &chk_final});

  Tensor<double, 4> expected({2, T1, 2, 4});
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < T1; ++t)
      for (Index h = 0; h < 2; ++h)
        for (Index j = 0; j < 4; ++j) expected(b, t, h, j) = o_full(b, T0 + t, h, j);
  for (const auto& c : {compare("recurrent resumed", o_rec, expected),
                        compare("chunked resumed", o_chk, expected),
                        compare("recurrent final state", rec_final.S, full_final.S),
                        compare("chunked final state", chk_final.S, full_final.S)}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-10);
  }
  // And the chunked form's final state resumes the decoder.
  Decoder<double> resumed(chk_final, 1);
  CHECK(resumed.tokens() == T0 + T1);
}

TEST_CASE("decoder: bad steps throw and leave the state unchanged", "[decoder][errors]") {
  Decoder<double> dec(1, 2, 1, 3, 4);
  Tensor<double, 3> q({1, 1, 3}), k({1, 1, 3}), v({1, 2, 4}), lam({1, 2, 1}), o({1, 2, 4});
  Tensor<double, 2> g({1, 2});
  dec.step(q, k, v, g, lam, o);  // t = 0 needs 1 level
  CHECK_THROWS_AS(dec.step(q, k, v, g, lam, o), std::invalid_argument);  // t = 1 needs 2
  CHECK(dec.tokens() == 1);
  Tensor<double, 3> lam2({1, 2, 2});
  g(0, 1) = 0.5;
  CHECK_THROWS_AS(dec.step(q, k, v, g, lam2, o), std::invalid_argument);
  g(0, 1) = 0;
  Tensor<double, 3> v_bad({1, 2, 5});
  CHECK_THROWS_AS(dec.step(q, k, v_bad, g, lam2, o), std::invalid_argument);
  CHECK(dec.tokens() == 1);
  CHECK_NOTHROW(dec.step(q, k, v, g, lam2, o));
  CHECK_THROWS_AS(Decoder<double>(1, 3, 2, 4, 4), std::invalid_argument);
  CHECK_THROWS_AS(Decoder<double>(0, 1, 1, 4, 4), std::invalid_argument);
}
