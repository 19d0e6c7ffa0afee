// Bad input gets std::invalid_argument naming the argument and the expected value, in every
// form, forward and backward (reference/loglinear/core/checks.hpp).
#include <loglinear/attention/decoder.hpp>
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/checks.hpp>

#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <limits>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

// Runs forward and backward of `form` and returns the message of the exception they throw.
std::string error_of(Form form, const AttentionInputs<double>& in, Index C = 64,
                     Shape<4> o_shape = {0, 0, 0, 0}) {
  if (o_shape == Shape<4>{0, 0, 0, 0}) o_shape = in.v.shape;
  Tensor<double, 4> o(o_shape);
  std::string fwd, bwd;
  try {
    forward<double>(form, in, ChunkedOptions{C}, o);
  } catch (const std::invalid_argument& e) {
    fwd = e.what();
  }
  try {
    const AttentionDims d{in.q.shape[0], in.q.shape[1], in.v.shape[2], in.q.shape[2],
                          in.q.shape[3], in.v.shape[3], in.lam.shape[3]};
    AttentionGradTensors<double> grads(d);
    Tensor<double, 4> dout(o_shape);
    backward<double>(form, in, ChunkedOptions{C}, dout, grads.views());
  } catch (const std::invalid_argument& e) {
    bwd = e.what();
  }
  // Forward and backward validate identically (the backward names its dout where the forward
  // names its o).
  if (bwd.rfind("dout:", 0) == 0) bwd = "o:" + bwd.substr(5);
  CHECK(fwd == bwd);
  return fwd;
}

}  // namespace

TEST_CASE("errors: every form rejects bad input with a message naming the argument", "[errors]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  CAPTURE(form_name(form));
  auto ok = random_inputs<double>({2, 9, 4, 2, 3, 5, 4}, 1);  // num_levels(9) = 5 > 4: see below
  auto good = random_inputs<double>({2, 9, 4, 2, 3, 5, 5}, 1);
  AttentionInputs<double> in = good.view();
  CHECK(error_of(form, in).empty());

  SECTION("lam with fewer levels than num_levels(T)") {
    CHECK_THAT(error_of(form, ok.view()),
               ContainsSubstring("lam: expected shape [B,T,H,L] = [2,9,4,L] with L >= "
                                 "num_levels(9) = 5, got [2,9,4,4]"));
  }
  SECTION("k of another shape than q") {
    auto k = Tensor<double, 4>({2, 9, 2, 4});
    in.k = k;
    CHECK_THAT(error_of(form, in),
               ContainsSubstring("k: expected shape [2,9,2,3] (same as q), got [2,9,2,4]"));
  }
  SECTION("v with another length") {
    auto v = Tensor<double, 4>({2, 8, 4, 5});
    in.v = v;
    CHECK_THAT(error_of(form, in, 64, {2, 8, 4, 5}), ContainsSubstring("v: expected shape [2,9,4,5]"));
  }
  SECTION("g of the wrong shape") {
    auto g = Tensor<double, 3>({2, 9, 3});
    in.g = g;
    CHECK_THAT(error_of(form, in), ContainsSubstring("g: expected shape [2,9,4] = [B,T,H], got [2,9,3]"));
  }
  SECTION("an empty sequence") {
    auto q = Tensor<double, 4>({2, 0, 2, 3});
    in.q = q;
    CHECK_THAT(error_of(form, in), ContainsSubstring("q: expected T >= 1 tokens (dimension 1), got T = 0"));
  }
  SECTION("groups that do not divide the heads") {
    auto q = Tensor<double, 4>({2, 9, 3, 3});
    in.q = q;
    in.k = q;
    CHECK_THAT(error_of(form, in),
               ContainsSubstring("q: expected the group count G to divide the head count H = 4, got G = 3"));
  }
  SECTION("a positive log-decay") {
    good.g(1, 3, 2) = 0.25;
    CHECK_THAT(error_of(form, good.view()),
               ContainsSubstring("g: expected log-decay values <= 0, got 0.250000"));
  }
  SECTION("non-finite values in any input") {
    const double bad = GENERATE(std::numeric_limits<double>::quiet_NaN(),
                                std::numeric_limits<double>::infinity());
    good.v(0, 4, 1, 2) = bad;
    CHECK_THAT(error_of(form, good.view()), ContainsSubstring("v: expected finite values"));
    good.v(0, 4, 1, 2) = 0;
    good.lam(1, 8, 3, 4) = bad;
    CHECK_THAT(error_of(form, good.view()), ContainsSubstring("lam: expected finite values"));
    good.lam(1, 8, 3, 4) = 0;
    good.q(0, 0, 0, 0) = bad;
    CHECK_THAT(error_of(form, good.view()), ContainsSubstring("q: expected finite values"));
    good.q(0, 0, 0, 0) = 0;
    good.k(1, 5, 1, 2) = bad;
    CHECK_THAT(error_of(form, good.view()),
               ContainsSubstring("k: expected finite values") && ContainsSubstring("at flat index"));
    good.k(1, 5, 1, 2) = 0;
    good.g(0, 0, 0) = -bad;  // -inf would be a "gate of exactly zero": still rejected, not finite
    CHECK_THAT(error_of(form, good.view()), ContainsSubstring("g: expected finite values"));
  }
  SECTION("lam with another batch, length or head count") {
    const auto [shape, got] = GENERATE(table<Shape<4>, std::string>(
        {{{1, 9, 4, 5}, "[1,9,4,5]"}, {{2, 8, 4, 5}, "[2,8,4,5]"}, {{2, 9, 3, 5}, "[2,9,3,5]"}}));
    auto lam = Tensor<double, 4>(shape);
    in.lam = lam;
    CHECK_THAT(error_of(form, in),
               ContainsSubstring("lam: expected shape [B,T,H,L] = [2,9,4,L] with L >= "
                                 "num_levels(9) = 5, got " + got));
  }
  SECTION("an output of the wrong shape") {
    CHECK_THAT(error_of(form, in, 64, {2, 9, 4, 4}), ContainsSubstring("expected shape [2,9,4,5]"));
  }
}

TEST_CASE("errors: every backward rejects a non-finite output gradient", "[errors]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const double bad = GENERATE(std::numeric_limits<double>::quiet_NaN(),
                              std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity());
  CAPTURE(form_name(form), bad);
  auto in = random_inputs<double>({2, 9, 4, 2, 3, 5}, 1);
  AttentionGradTensors<double> grads({2, 9, 4, 2, 3, 5, in.lam.dim(3)});
  CHECK_NOTHROW(backward<double>(form, in.view(), ChunkedOptions{4}, in.dout, grads.views()));
  in.dout(1, 7, 3, 4) = bad;
  CHECK_THROWS_WITH(backward<double>(form, in.view(), ChunkedOptions{4}, in.dout, grads.views()),
                    ContainsSubstring("dout: expected finite values") &&
                        ContainsSubstring("at flat index " + std::to_string(in.dout.view().offset(1, 7, 3, 4))));
}

TEST_CASE("errors: every backward rejects gradient outputs of the wrong shape", "[errors]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  CAPTURE(form_name(form));
  const auto in = random_inputs<double>({2, 9, 4, 2, 3, 5, 6}, 1);
  AttentionGradTensors<double> grads({2, 9, 4, 2, 3, 5, 6});
  auto run = [&](const AttentionGrads<double>& gr) {
    backward<double>(form, in.view(), ChunkedOptions{4}, in.dout, gr);
  };
  CHECK_NOTHROW(run(grads.views()));
  AttentionGrads<double> gr = grads.views();
  // One wrong tensor at a time; the others keep their right shapes.
  Tensor<double, 4> dq({2, 9, 4, 3}), dk({2, 9, 2, 4}), dv({2, 9, 2, 5}), dlam({2, 9, 4, 5});
  Tensor<double, 3> dg({2, 8, 4});
  SECTION("dq") {
    gr.dq = dq;
    CHECK_THROWS_WITH(run(gr), ContainsSubstring("dq: expected shape [2,9,2,3] (as q), got [2,9,4,3]"));
  }
  SECTION("dk") {
    gr.dk = dk;
    CHECK_THROWS_WITH(run(gr), ContainsSubstring("dk: expected shape [2,9,2,3] (as k), got [2,9,2,4]"));
  }
  SECTION("dv") {
    gr.dv = dv;
    CHECK_THROWS_WITH(run(gr), ContainsSubstring("dv: expected shape [2,9,4,5] (as v), got [2,9,2,5]"));
  }
  SECTION("dg") {
    gr.dg = dg;
    CHECK_THROWS_WITH(run(gr), ContainsSubstring("dg: expected shape [2,9,4] (as g), got [2,8,4]"));
  }
  SECTION("dlam: as lam, including its allocated level count") {
    gr.dlam = dlam;
    CHECK_THROWS_WITH(run(gr),
                      ContainsSubstring("dlam: expected shape [2,9,4,6] (as lam), got [2,9,4,5]"));
  }
}

TEST_CASE("errors: the chunked form rejects a chunk size that is not a power of two", "[errors][chunked]") {
  const auto in = random_inputs<double>({1, 9, 1, 1, 2, 2}, 1);
  const Index C = GENERATE(0, -4, 3, 48, 100);
  CAPTURE(C);
  CHECK_THAT(error_of(Form::chunked, in.view(), C),
             ContainsSubstring("chunk_size: expected a power of two >= 1, got " + std::to_string(C)));
}

TEST_CASE("errors: an unknown form name is rejected", "[errors]") {
  CHECK_THROWS_WITH(parse_form("fenwick"),
                    "form: expected one of naive, recurrent, chunked, got \"fenwick\"");
}

TEST_CASE("errors: an initial state of the wrong shape is rejected", "[errors][state]") {
  const auto in = random_inputs<double>({1, 9, 2, 1, 2, 3, 6}, 1);
  FenwickState<double> st;
  st.tokens = 5;
  st.S = Tensor<double, 5>({1, 2, 2, 2, 3});  // num_levels(5) = 4 levels expected
  Tensor<double, 4> o(in.v.shape());
  CHECK_THROWS_WITH(recurrent_forward<double>(in.view(), o, {&st, nullptr}),
                    ContainsSubstring("initial_state.S: expected shape [1,2,4,2,3]"));
  CHECK_THROWS_WITH(chunked_forward<double>(in.view(), {4}, o, {&st, nullptr}),
                    ContainsSubstring("initial_state.S: expected shape [1,2,4,2,3]"));
  st.S = Tensor<double, 5>({1, 2, 4, 2, 3});
  // tokens 5 + T 9 = 14 needs num_levels(14) = 5 levels; lam has 6: fine. With L = 4 it is not.
  CHECK_NOTHROW(recurrent_forward<double>(in.view(), o, {&st, nullptr}));
  const auto short_lam = random_inputs<double>({1, 9, 2, 1, 2, 3, 4}, 1);
  CHECK_THROWS_WITH(chunked_forward<double>(short_lam.view(), {4}, o, {&st, nullptr}),
                    ContainsSubstring("L >= num_levels(14) = 5"));
}

// ---- Hostile sizes (issue 11): nothing is sized from an unchecked caller number -------------

TEST_CASE("errors: a chunk size above T is clamped to the smallest power of two >= T, "
          "with the same output and gradients bit for bit", "[errors][chunked]") {
  const Index T = GENERATE(1, 5, 100);
  const Index C = GENERATE(Index{1} << 20, Index{1} << 40, Index{1} << 62);
  const std::uint64_t seed = fresh_seed();
  CAPTURE(T, C, seed);
  const auto in = random_inputs<double>({2, T, 2, 1, 3, 4}, seed);
  const Index clamped = effective_chunk_size(C, T);
  CHECK(clamped >= T);
  CHECK(clamped / 2 < T);
  CHECK((clamped & (clamped - 1)) == 0);
  Tensor<double, 4> o_ref(in.v.shape()), o(in.v.shape());
  chunked_forward<double>(in.view(), {clamped}, o_ref);
  chunked_forward<double>(in.view(), {C}, o);
  CHECK(o.values() == o_ref.values());
  const AttentionDims d{2, T, 2, 1, 3, 4, in.lam.dim(3)};
  AttentionGradTensors<double> g_ref(d), g(d);
  chunked_backward<double>(in.view(), {clamped}, in.dout, g_ref.views());
  chunked_backward<double>(in.view(), {C}, in.dout, g.views());
  CHECK(g.dq.values() == g_ref.dq.values());
  CHECK(g.dk.values() == g_ref.dk.values());
  CHECK(g.dv.values() == g_ref.dv.values());
  CHECK(g.dg.values() == g_ref.dg.values());
  CHECK(g.dlam.values() == g_ref.dlam.values());
}

TEST_CASE("errors: the chunk size is clamped at the absolute end t0 + T of a resumed call",
          "[errors][chunked][state]") {
  // tokens 5 + T 9 = 14: every C >= 16 puts the whole call in chunk 0.
  CHECK(effective_chunk_size(Index{1} << 40, 14) == 16);
  CHECK(effective_chunk_size(64, 100) == 64);
  CHECK(effective_chunk_size(1, 1) == 1);
  CHECK(effective_chunk_size(Index{1} << 62, (Index{1} << 62) + 1) == Index{1} << 62);
  CHECK_THROWS_WITH(effective_chunk_size(3, 10), "chunk_size: expected a power of two >= 1, got 3");
  const auto in = random_inputs<double>({1, 9, 2, 1, 2, 3, 6}, 1);
  FenwickState<double> st;
  st.tokens = 5;
  st.S = Tensor<double, 5>({1, 2, 4, 2, 3});
  for (auto& x : st.S.values()) x = 0.25;
  Tensor<double, 4> o_ref(in.v.shape()), o(in.v.shape());
  chunked_forward<double>(in.view(), {16}, o_ref, {&st, nullptr});
  chunked_forward<double>(in.view(), {Index{1} << 40}, o, {&st, nullptr});
  CHECK(o.values() == o_ref.values());
}

TEST_CASE("errors: shapes whose element count overflows a 64-bit index are refused before any "
          "data is read", "[errors]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  CAPTURE(form_name(form));
  const double dummy = 0;  // never read: the shapes are refused first
  const Index big = Index{1} << 31;
  const ConstTensorView<double, 4> q{&dummy, {big, big, 1, 16}}, v{&dummy, {big, big, 1, 1}};
  const ConstTensorView<double, 3> g{&dummy, {big, big, 1}};
  const ConstTensorView<double, 4> lam{&dummy, {big, big, 1, 32}};
  double out = 0;
  const TensorView<double, 4> o{&out, {big, big, 1, 1}};
  CHECK_THROWS_WITH(forward<double>(form, {q, q, v, g, lam}, {64}, o),
                    ContainsSubstring("q: the element count 2147483648 x 2147483648 x 1 x 16 "
                                      "overflows a 64-bit index"));
  CHECK_THROWS_WITH(checked_product("x", {Index{1} << 62, 4}), ContainsSubstring("x: the element count"));
  CHECK_THROWS_WITH(checked_product("x", {3, -1}), "x: expected sizes >= 0, got 3 x -1");
  CHECK(checked_product("x", {0, Index{1} << 62, Index{1} << 62}) == 0);
}

TEST_CASE("errors: work arrays that cannot fit in memory are refused before they are allocated",
          "[errors]") {
  // K = V = 2^21: inputs of 16 MB each, but a K x V state of 2^42 doubles (32 TiB).
  const Index K = Index{1} << 21;
  const auto in = random_inputs<double>({1, 1, 1, 1, K, K, 1}, 1);
  Tensor<double, 4> o(in.v.shape());
  CHECK_THROWS_WITH(recurrent_forward<double>(in.view(), o),
                    ContainsSubstring("q, v: the Fenwick state of one head") &&
                        ContainsSubstring("more than this machine's memory"));
  CHECK_THROWS_WITH(chunked_forward<double>(in.view(), {64}, o),
                    ContainsSubstring("q, v: the K x V summaries of one head") &&
                        ContainsSubstring("more than this machine's memory"));
  CHECK_THROWS_WITH(Decoder<double>(1, 1, 1, K, K),
                    ContainsSubstring("Decoder: one K x V level of B x H streams") &&
                        ContainsSubstring("more than this machine's memory"));
  CHECK_THROWS_WITH(Decoder<double>(Index{1} << 40, Index{1} << 40, 1, 1, 1),
                    ContainsSubstring("Decoder: B x H streams: the element count"));
  CHECK_THROWS_WITH(check_allocation("w", Index{1} << 59, 8), ContainsSubstring("w: needs"));
}

TEST_CASE("errors: decay_mask validates its one head's g and lam", "[errors][naive]") {
  const std::vector<double> g{-0.5, -0.25, 0.0};
  const std::vector<double> lam(3 * 3, 1.0);
  const auto G = [&](Index T) { return ConstVectorMap<double>(g.data(), T, Eigen::InnerStride<>(1)); };
  const auto Lam = [&](Index T, Index L) {
    return ConstMatrixMap<double>(lam.data(), T, L, Eigen::OuterStride<>(L));
  };
  CHECK(decay_mask<double>(G(3), Lam(3, 3)).rows() == 3);
  CHECK_THROWS_WITH(decay_mask<double>(G(0), Lam(0, 1)), "g: expected T >= 1 tokens, got T = 0");
  CHECK_THROWS_WITH(decay_mask<double>(G(3), Lam(3, 2)),
                    ContainsSubstring("lam: expected shape [T,L] = [3,L] with L >= num_levels(3) = 3, got [3,2]"));
  std::vector<double> bad = g;
  bad[1] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(decay_mask<double>(ConstVectorMap<double>(bad.data(), 3, Eigen::InnerStride<>(1)), Lam(3, 3)),
                    ContainsSubstring("g: expected finite values, got nan at index 1"));
  bad[1] = 0.5;
  CHECK_THROWS_WITH(decay_mask<double>(ConstVectorMap<double>(bad.data(), 3, Eigen::InnerStride<>(1)), Lam(3, 3)),
                    ContainsSubstring("g: expected log-decay values <= 0, got 0.500000 at index 1"));
}
