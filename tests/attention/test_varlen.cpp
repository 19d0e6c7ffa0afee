// Variable-length batches (attention/varlen.hpp): for every form, forward and every gradient of
// a packed call equal separate B = 1 calls per sequence (bit for bit in practice; the bounds are
// 1e-12 in double and 1e-5 in float); the forms agree in varlen mode; no token reaches another
// sequence; central finite differences of the chunked backward; per-sequence initial / final
// states and their gradients; bad cu_seqlens and state requests.
#include <loglinear/attention/varlen.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/attention_gradcheck.hpp"
#include "../support/compare.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

// FlashAttention offsets of sequences of the given lengths: 0, n0, n0+n1, ...
Tensor<Index, 1> offsets(const std::vector<Index>& lengths) {
  Tensor<Index, 1> cu({Index(lengths.size()) + 1});
  for (size_t i = 0; i < lengths.size(); ++i) cu(Index(i) + 1) = cu(Index(i)) + lengths[i];
  return cu;
}

Index total(const std::vector<Index>& lengths) {
  Index T = 0;
  for (Index n : lengths) T += n;
  return T;
}

Index longest(const std::vector<Index>& lengths) {
  return *std::max_element(lengths.begin(), lengths.end());
}

std::string describe(const std::vector<Index>& lengths) {
  std::string s = "lengths";
  for (Index n : lengths) s += " " + std::to_string(n);
  return s;
}

// Elements per token of a [1,T,...] tensor.
template <class Scalar, int Rank>
Index per_token(const Tensor<Scalar, Rank>& t) {
  Index n = 1;
  for (int i = 2; i < Rank; ++i) n *= t.dim(i);
  return n;
}

// A copy of the tokens [begin, begin + n) of a [1,T,...] tensor, as [1,n,...].
template <class Scalar, int Rank>
Tensor<Scalar, Rank> take(const Tensor<Scalar, Rank>& t, Index begin, Index n) {
  Shape<Rank> shape = t.shape();
  shape[1] = n;
  Tensor<Scalar, Rank> out(shape);
  std::copy_n(t.data() + begin * per_token(t), out.size(), out.data());
  return out;
}

// Writes a [1,n,...] tensor into the tokens [begin, begin + n) of a [1,T,...] tensor.
template <class Scalar, int Rank>
void put(Tensor<Scalar, Rank>& dst, const Tensor<Scalar, Rank>& src, Index begin) {
  std::copy_n(src.data(), src.size(), dst.data() + begin * per_token(dst));
}

// The token ranges [begin, begin + n) of a [1,T,...] tensor, concatenated in order.
template <class Scalar, int Rank>
Tensor<Scalar, Rank> gather(const Tensor<Scalar, Rank>& t,
                            const std::vector<std::pair<Index, Index>>& ranges) {
  Shape<Rank> shape = t.shape();
  shape[1] = 0;
  for (const auto& r : ranges) shape[1] += r.second;
  Tensor<Scalar, Rank> out(shape);
  Index at = 0;
  for (const auto& [begin, n] : ranges) {
    put(out, take(t, begin, n), at);
    at += n;
  }
  return out;
}

template <class Scalar>
OwnedInputs<Scalar> gather(const OwnedInputs<Scalar>& in,
                           const std::vector<std::pair<Index, Index>>& ranges) {
  return {gather(in.q, ranges),   gather(in.k, ranges), gather(in.v, ranges),
          gather(in.lam, ranges), gather(in.g, ranges), gather(in.dout, ranges)};
}

template <class Scalar>
AttentionDims dims_of(const OwnedInputs<Scalar>& in) {
  return {in.q.dim(0), in.q.dim(1), in.v.dim(2), in.q.dim(2), in.q.dim(3), in.v.dim(3),
          in.lam.dim(3)};
}

// Output and gradients of one packed call, or of the separate calls assembled in packed layout.
template <class Scalar>
struct Result {
  Tensor<Scalar, 4> o;
  AttentionGradTensors<Scalar> gr;
  explicit Result(const OwnedInputs<Scalar>& in) : o(in.v.shape()), gr(dims_of(in)) {}
};

template <class Scalar>
Result<Scalar> run_varlen(Form f, const OwnedInputs<Scalar>& in, const Tensor<Index, 1>& cu,
                          Index C) {
  Result<Scalar> r(in);
  forward_varlen<Scalar>(f, in.view(), cu, ChunkedOptions{C}, r.o);
  backward_varlen<Scalar>(f, in.view(), cu, ChunkedOptions{C}, in.dout, r.gr.views());
  return r;
}

// Each sequence as its own B = 1 call on copies of its tokens.
template <class Scalar>
Result<Scalar> run_separately(Form f, const OwnedInputs<Scalar>& in, const Tensor<Index, 1>& cu,
                              Index C) {
  Result<Scalar> r(in);
  for (Index i = 0; i + 1 < cu.size(); ++i) {
    const Index a = cu(i), n = cu(i + 1) - cu(i);
    OwnedInputs<Scalar> seq{take(in.q, a, n),   take(in.k, a, n), take(in.v, a, n),
                            take(in.lam, a, n), take(in.g, a, n), take(in.dout, a, n)};
    Tensor<Scalar, 4> o(seq.v.shape());
    AttentionGradTensors<Scalar> gr(dims_of(seq));
    forward<Scalar>(f, seq.view(), ChunkedOptions{C}, o);
    backward<Scalar>(f, seq.view(), ChunkedOptions{C}, seq.dout, gr.views());
    put(r.o, o, a);
    put(r.gr.dq, gr.dq, a);
    put(r.gr.dk, gr.dk, a);
    put(r.gr.dv, gr.dv, a);
    put(r.gr.dg, gr.dg, a);
    put(r.gr.dlam, gr.dlam, a);
  }
  return r;
}

template <class A, class E>
std::vector<Comparison> compare_all(const std::string& what, const Result<A>& a,
                                    const Result<E>& e) {
  return {compare(what + "o", a.o, e.o),          compare(what + "dq", a.gr.dq, e.gr.dq),
          compare(what + "dk", a.gr.dk, e.gr.dk), compare(what + "dv", a.gr.dv, e.gr.dv),
          compare(what + "dg", a.gr.dg, e.gr.dg), compare(what + "dlam", a.gr.dlam, e.gr.dlam)};
}

// Sizes of a packed case: B = 1, T = sum of the lengths; L = num_levels(longest) exactly when
// `minimal_levels` (the least varlen accepts), else two spare levels that must stay unread.
Sizes packed_sizes(const std::vector<Index>& lengths, Index H, Index G, Index K, Index V,
                   bool minimal_levels) {
  const Index L = num_levels(longest(lengths)) + (minimal_levels ? 0 : 2);
  return {1, total(lengths), H, G, K, V, L};
}

// Sequence sets: a single token; odd lengths; lengths of 1 between longer ones; lengths that are
// and are not multiples of the chunk sizes below; one long sequence next to short ones.
std::vector<Index> lengths_case(int i) {
  switch (i) {
    case 0: return {1};
    case 1: return {7, 1, 13};
    case 2: return {33, 5, 1, 64, 19};
    case 3: return {100, 1, 1, 29};
    default: return {16, 3, 32, 9};
  }
}

template <class Scalar>
void check_equals_separate(double bound) {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const auto lengths = lengths_case(GENERATE(0, 1, 2, 3, 4));
  const Index C = GENERATE(1, 4, 16, 64);
  // G > 1 with K != V; G = H; G = 1 with the fewest levels varlen accepts.
  const auto [H, G, K, V, minimal] = GENERATE(table<Index, Index, Index, Index, bool>(
      {{4, 2, 3, 5, false}, {3, 3, 4, 2, false}, {2, 1, 2, 3, true}}));
  const Sizes s = packed_sizes(lengths, H, G, K, V, minimal);
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), describe(lengths), describe(s), C, seed);
  const auto in = random_inputs<Scalar>(s, seed);
  const auto cu = offsets(lengths);
  const auto packed = run_varlen(form, in, cu, C);
  const auto separate = run_separately(form, in, cu, C);
  for (const auto& c : compare_all("varlen vs separate ", packed, separate)) {
    INFO(c.report());
    CHECK(c.max_rel <= bound);
  }
}

// Loss = sum(dout ⊙ o) of the packed chunked call, whose gradients backward_varlen returns.
double varlen_loss(const OwnedInputs<double>& in, const Tensor<Index, 1>& cu, Index C) {
  Tensor<double, 4> o(in.v.shape());
  forward_varlen<double>(Form::chunked, in.view(), cu, ChunkedOptions{C}, o);
  double acc = 0;
  for (Index i = 0; i < o.size(); ++i) acc += o.values()[i] * in.dout.values()[i];
  return acc;
}

// The message forward_varlen and backward_varlen throw for these offsets and inputs; both must
// say the same.
std::string varlen_error(const OwnedInputs<double>& in, ConstTensorView<Index, 1> cu) {
  std::string fwd, bwd;
  Tensor<double, 4> o(in.v.shape());
  try {
    forward_varlen<double>(Form::chunked, in.view(), cu, ChunkedOptions{4}, o);
  } catch (const std::invalid_argument& e) {
    fwd = e.what();
  }
  AttentionGradTensors<double> gr(dims_of(in));
  try {
    backward_varlen<double>(Form::chunked, in.view(), cu, ChunkedOptions{4}, in.dout, gr.views());
  } catch (const std::invalid_argument& e) {
    bwd = e.what();
  }
  CHECK(fwd == bwd);
  return fwd;
}

}  // namespace

TEST_CASE("varlen: every form's output and gradients equal separate calls per sequence (double)",
          "[varlen]") {
  check_equals_separate<double>(1e-12);
}

TEST_CASE("varlen: every form's output and gradients equal separate calls per sequence (float)",
          "[varlen][float]") {
  check_equals_separate<float>(1e-5);
}

TEST_CASE("varlen: the three forms agree with each other on packed sequences", "[varlen][cross]") {
  const auto lengths = lengths_case(GENERATE(1, 2, 3, 4));
  const Index C = GENERATE(1, 8, 64);
  const Sizes s = packed_sizes(lengths, 4, 2, 3, 5, false);
  const auto seed = fresh_seed();
  CAPTURE(describe(lengths), describe(s), C, seed);
  const auto in = random_inputs<double>(s, seed);
  const auto cu = offsets(lengths);
  const auto ref = run_varlen(Form::naive, in, cu, C);
  for (Form f : {Form::recurrent, Form::chunked}) {
    for (const auto& c : compare_all(form_name(f) + " vs naive ", run_varlen(f, in, cu, C), ref)) {
      INFO(c.report());
      CHECK(c.max_rel <= 1e-10);
    }
  }
}

TEST_CASE("varlen: a sequence's tokens never reach another sequence", "[varlen][isolation]") {
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const Index C = GENERATE(1, 4, 64);
  const std::vector<Index> lengths{13, 6, 9};
  // The first and the last token of sequence 1, which border sequences 0 and 2.
  const Index token = GENERATE(13, 18);
  const Sizes s = packed_sizes(lengths, 2, 1, 3, 4, false);
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), C, token, seed);
  const auto cu = offsets(lengths);
  const auto in = random_inputs<double>(s, seed);
  auto moved = in;
  for (auto* t : {&moved.q, &moved.k}) {
    for (Index j = 0; j < per_token(*t); ++j) t->data()[token * per_token(*t) + j] += 0.75;
  }
  for (auto* t : {&moved.v, &moved.lam, &moved.dout}) {
    for (Index j = 0; j < per_token(*t); ++j) t->data()[token * per_token(*t) + j] -= 1.5;
  }
  for (Index j = 0; j < per_token(moved.g); ++j) {
    moved.g.data()[token * per_token(moved.g) + j] *= 3;
  }
  const auto a = run_varlen(form, in, cu, C), b = run_varlen(form, moved, cu, C);
  // Sequence 1 itself changes; sequences 0 and 2 are bit-identical, outputs and gradients.
  CHECK(take(a.o, 13, 6).values() != take(b.o, 13, 6).values());
  for (Index seq : {0, 2}) {
    const Index begin = cu(seq), n = lengths[size_t(seq)];
    CAPTURE(seq);
    CHECK(take(a.o, begin, n).values() == take(b.o, begin, n).values());
    CHECK(take(a.gr.dq, begin, n).values() == take(b.gr.dq, begin, n).values());
    CHECK(take(a.gr.dk, begin, n).values() == take(b.gr.dk, begin, n).values());
    CHECK(take(a.gr.dv, begin, n).values() == take(b.gr.dv, begin, n).values());
    CHECK(take(a.gr.dg, begin, n).values() == take(b.gr.dg, begin, n).values());
    CHECK(take(a.gr.dlam, begin, n).values() == take(b.gr.dlam, begin, n).values());
  }
}

TEST_CASE("varlen: the Fenwick tree restarts at every sequence start", "[varlen][restart]") {
  // Packed [5 | 5] differs from one sequence of 10 (level and decay of the second half change),
  // and dg is exactly 0 at every sequence's first token (its g is applied to nothing).
  const Form form = GENERATE(Form::naive, Form::recurrent, Form::chunked);
  const std::vector<Index> lengths{5, 5, 3};
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), seed);
  const auto in = random_inputs<double>(packed_sizes(lengths, 2, 2, 3, 2, false), seed);
  const auto cu = offsets(lengths);
  const auto r = run_varlen(form, in, cu, 2);
  Tensor<double, 4> whole(in.v.shape());
  forward<double>(form, in.view(), ChunkedOptions{2}, whole);
  const auto first = compare("first sequence vs whole", take(r.o, 0, 5), take(whole, 0, 5));
  INFO(first.report());
  CHECK(first.max_rel <= 1e-13);
  CHECK(take(r.o, 5, 5).values() != take(whole, 5, 5).values());
  for (Index begin : {0, 5, 10}) {
    for (Index h = 0; h < 2; ++h) CHECK(r.gr.dg(0, begin, h) == 0.0);
  }
}

TEST_CASE("varlen: chunked backward matches central finite differences", "[varlen][fd]") {
  const std::vector<Index> lengths = GENERATE(std::vector<Index>{3, 1, 6, 5},
                                              std::vector<Index>{9, 2});
  const Index C = GENERATE(1, 2, 4);
  const Sizes s = packed_sizes(lengths, 2, 2, 3, 2, false);
  const auto seed = fresh_seed();
  CAPTURE(describe(lengths), C, seed);
  auto in = random_inputs<double>(s, seed);
  for (auto& x : in.g.values()) x = std::min(x, -1e-2);  // FD steps never make g positive
  const auto cu = offsets(lengths);
  AttentionGradTensors<double> gr(dims_of(in));
  backward_varlen<double>(Form::chunked, in.view(), cu, ChunkedOptions{C}, in.dout, gr.views());
  auto L = [&] { return varlen_loss(in, cu, C); };
  for (const auto& r : gradcheck_attention(in, gr, L, seed)) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

namespace {

// A state of `tokens` tokens for B = 1: empty for 0, else the final state of a random prefix.
FenwickState<double> prefix_state(Index tokens, const Sizes& s, std::uint64_t seed) {
  if (tokens == 0) return {0, Tensor<double, 5>({1, s.H, 0, s.K, s.V})};
  Sizes p = s;
  p.T = tokens;
  p.L = num_levels(tokens);
  const auto in = random_inputs<double>(p, seed);
  Tensor<double, 4> o(in.v.shape());
  FenwickState<double> state;
  recurrent_forward<double>(in.view(), o, {nullptr, &state});
  return state;
}

}  // namespace

TEST_CASE("varlen: per-sequence states equal separate stateful calls, forward and backward",
          "[varlen][state]") {
  const Form form = GENERATE(Form::recurrent, Form::chunked);
  const Index C = GENERATE(1, 4, 64);
  const std::vector<Index> lengths{7, 1, 13, 4}, prefix{5, 0, 16, 1};
  Index end = 0;
  for (size_t i = 0; i < lengths.size(); ++i) end = std::max(end, prefix[i] + lengths[i]);
  const Sizes s{1, total(lengths), 4, 2, 3, 2, num_levels(end) + 1};
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), C, seed);
  const auto in = random_inputs<double>(s, seed);
  const auto cu = offsets(lengths);
  std::vector<FenwickState<double>> initial;
  std::vector<Tensor<double, 5>> d_final;
  std::mt19937_64 rng(seed + 1);
  std::normal_distribution<double> normal;
  for (size_t i = 0; i < lengths.size(); ++i) {
    initial.push_back(prefix_state(prefix[i], s, seed + 2 + i));
    d_final.emplace_back(Shape<5>{1, s.H, num_levels(prefix[i] + lengths[i]), s.K, s.V});
    for (auto& x : d_final.back().values()) x = normal(rng);
  }

  Result<double> packed(in);
  std::vector<FenwickState<double>> finals;
  std::vector<Tensor<double, 5>> d_initial;
  forward_varlen<double>(form, in.view(), cu, ChunkedOptions{C}, packed.o, {&initial, &finals});
  backward_varlen<double>(form, in.view(), cu, ChunkedOptions{C}, in.dout, packed.gr.views(),
                          {&initial, nullptr}, &d_final, &d_initial);
  REQUIRE(finals.size() == lengths.size());
  REQUIRE(d_initial.size() == lengths.size());

  Result<double> separate(in);
  for (Index i = 0; i + 1 < cu.size(); ++i) {
    const Index a = cu(i), n = lengths[size_t(i)];
    CAPTURE(i);
    const auto seq = gather(in, {{a, n}});
    Tensor<double, 4> o(seq.v.shape());
    AttentionGradTensors<double> gr(dims_of(seq));
    FenwickState<double> fin;
    Tensor<double, 5> d_init;
    const StateIO<double> io{&initial[size_t(i)], &fin};
    const StateIO<double> io_bwd{&initial[size_t(i)], nullptr};
    if (form == Form::recurrent) {
      recurrent_forward<double>(seq.view(), o, io);
      recurrent_backward<double>(seq.view(), seq.dout, gr.views(), io_bwd, &d_final[size_t(i)],
                                 &d_init);
    } else {
      chunked_forward<double>(seq.view(), ChunkedOptions{C}, o, io);
      chunked_backward<double>(seq.view(), ChunkedOptions{C}, seq.dout, gr.views(), io_bwd,
                               &d_final[size_t(i)], &d_init);
    }
    put(separate.o, o, a);
    put(separate.gr.dq, gr.dq, a);
    put(separate.gr.dk, gr.dk, a);
    put(separate.gr.dv, gr.dv, a);
    put(separate.gr.dg, gr.dg, a);
    put(separate.gr.dlam, gr.dlam, a);
    CHECK(finals[size_t(i)].tokens == prefix[size_t(i)] + n);
    const auto cf = compare("final_state.S", finals[size_t(i)].S, fin.S);
    const auto ci = compare("d_initial", d_initial[size_t(i)], d_init);
    for (const auto& c : {cf, ci}) {
      INFO(c.report());
      CHECK(c.max_rel <= 1e-12);
    }
  }
  for (const auto& c : compare_all("varlen vs separate ", packed, separate)) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);
  }
}

TEST_CASE("varlen: continuing every sequence from its state equals one varlen call",
          "[varlen][state]") {
  const Form form = GENERATE(Form::recurrent, Form::chunked);
  const Index C = GENERATE(1, 4, 16);
  const std::vector<Index> lengths{9, 3, 20, 1}, split{4, 1, 11, 1};
  const Sizes s = packed_sizes(lengths, 2, 1, 3, 4, false);
  const auto seed = fresh_seed();
  CAPTURE(form_name(form), C, seed);
  const auto in = random_inputs<double>(s, seed);
  const auto cu = offsets(lengths);
  std::vector<std::pair<Index, Index>> head, tail;
  std::vector<Index> head_lengths, tail_lengths;
  for (size_t i = 0; i < lengths.size(); ++i) {
    head.push_back({cu(Index(i)), split[i]});
    head_lengths.push_back(split[i]);
    if (lengths[i] > split[i]) {  // a sequence that ends at its split gets no second part
      tail.push_back({cu(Index(i)) + split[i], lengths[i] - split[i]});
      tail_lengths.push_back(lengths[i] - split[i]);
    }
  }
  Tensor<double, 4> whole(in.v.shape());
  std::vector<FenwickState<double>> whole_final;
  forward_varlen<double>(form, in.view(), cu, ChunkedOptions{C}, whole, {nullptr, &whole_final});

  const auto first = gather(in, head), second = gather(in, tail);
  Tensor<double, 4> o1(first.v.shape()), o2(second.v.shape());
  std::vector<FenwickState<double>> states;
  forward_varlen<double>(form, first.view(), offsets(head_lengths), ChunkedOptions{C}, o1,
                         {nullptr, &states});
  states.pop_back();  // the last sequence ended with its first part
  // Continue in place: the same vector is the initial and the final state.
  forward_varlen<double>(form, second.view(), offsets(tail_lengths), ChunkedOptions{C}, o2,
                         {&states, &states});
  const auto c1 = compare("first parts", o1, gather(whole, head));
  const auto c2 = compare("second parts", o2, gather(whole, tail));
  for (const auto& c : {c1, c2}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);
  }
  REQUIRE(states.size() == tail.size());
  for (size_t i = 0; i < states.size(); ++i) {
    CHECK(states[i].tokens == whole_final[i].tokens);
    const auto c = compare("final state", states[i].S, whole_final[i].S);
    INFO(c.report());
    CHECK(c.max_rel <= 1e-12);
  }
}

TEST_CASE("varlen: per-sequence state requests are checked", "[varlen][state][errors]") {
  const std::vector<Index> lengths{5, 3};
  const auto in = random_inputs<double>(packed_sizes(lengths, 2, 1, 3, 2, false), 3);
  const auto cu = offsets(lengths);
  Tensor<double, 4> o(in.v.shape());
  AttentionGradTensors<double> gr(dims_of(in));
  const Sizes s{1, 8, 2, 1, 3, 2, 6};
  std::vector<FenwickState<double>> one{prefix_state(4, s, 1)};
  std::vector<FenwickState<double>> two{prefix_state(4, s, 1), prefix_state(2, s, 2)};
  std::vector<FenwickState<double>> finals;
  CHECK_THROWS_WITH(forward_varlen<double>(Form::chunked, in.view(), cu, ChunkedOptions{}, o,
                                           {&one, nullptr}),
                    ContainsSubstring("initial_state: expected one state per sequence (S = 2 from "
                                      "cu_seqlens), got 1"));
  CHECK_THROWS_WITH(forward_varlen<double>(Form::naive, in.view(), cu, ChunkedOptions{}, o,
                                           {nullptr, &finals}),
                    ContainsSubstring("final_state: expected no state with the naive form"));
  CHECK_THROWS_WITH(forward_varlen<double>(Form::naive, in.view(), cu, ChunkedOptions{}, o,
                                           {&two, nullptr}),
                    ContainsSubstring("initial_state: expected no state with the naive form"));
  std::vector<Tensor<double, 5>> d_final(1);
  CHECK_THROWS_WITH(backward_varlen<double>(Form::recurrent, in.view(), cu, ChunkedOptions{},
                                            in.dout, gr.views(), {&two, nullptr}, &d_final),
                    ContainsSubstring("d_final: expected one gradient per sequence (S = 2 from "
                                      "cu_seqlens), got 1"));
  // A state of the wrong shape names its sequence.
  two[1].S = Tensor<double, 5>({1, 2, 1, 3, 2});
  CHECK_THROWS_WITH(forward_varlen<double>(Form::recurrent, in.view(), cu, ChunkedOptions{}, o,
                                           {&two, &finals}),
                    ContainsSubstring("initial_state.S: expected shape [1,2,2,3,2]") &&
                        ContainsSubstring("(in sequence 1, tokens [5, 8) of cu_seqlens)"));
  CHECK(finals.empty());  // untouched when a sequence throws
}

TEST_CASE("varlen: bad cu_seqlens and packed inputs are refused with a named message",
          "[varlen][errors]") {
  const std::vector<Index> lengths{5, 3, 4};  // T = 12, longest 5: num_levels(5) = 4
  auto in = random_inputs<double>(packed_sizes(lengths, 2, 1, 3, 2, true), 7);
  const auto good = offsets(lengths);
  CHECK(varlen_error(in, good).empty());
  auto cu_of = [](std::vector<Index> v) {
    Tensor<Index, 1> cu({Index(v.size())});
    std::copy(v.begin(), v.end(), cu.data());
    return cu;
  };

  SECTION("fewer than 2 offsets") {
    CHECK_THAT(varlen_error(in, cu_of({0})),
               ContainsSubstring("cu_seqlens: expected S+1 >= 2 offsets (S >= 1 sequences), "
                                 "got 1"));
    CHECK_THAT(varlen_error(in, cu_of({})),
               ContainsSubstring("cu_seqlens: expected S+1 >= 2 offsets (S >= 1 sequences), "
                                 "got 0"));
  }
  SECTION("null data") {
    CHECK_THAT(varlen_error(in, ConstTensorView<Index, 1>{nullptr, {3}}),
               ContainsSubstring("cu_seqlens: expected data, got null"));
  }
  SECTION("not starting at 0") {
    CHECK_THAT(varlen_error(in, cu_of({1, 5, 12})),
               ContainsSubstring("cu_seqlens: expected cu_seqlens[0] = 0, got 1"));
    CHECK_THAT(varlen_error(in, cu_of({-2, 5, 12})),
               ContainsSubstring("cu_seqlens: expected cu_seqlens[0] = 0, got -2"));
  }
  SECTION("an empty sequence") {
    CHECK_THAT(varlen_error(in, cu_of({0, 5, 5, 12})),
               ContainsSubstring("cu_seqlens: expected strictly increasing offsets (no empty "
                                 "sequence), got cu_seqlens[1] = 5, cu_seqlens[2] = 5"));
    CHECK_THAT(varlen_error(in, cu_of({0, 0, 12})),
               ContainsSubstring("got cu_seqlens[0] = 0, cu_seqlens[1] = 0"));
  }
  SECTION("decreasing offsets") {
    CHECK_THAT(varlen_error(in, cu_of({0, 8, 5, 12})),
               ContainsSubstring("cu_seqlens: expected strictly increasing offsets (no empty "
                                 "sequence), got cu_seqlens[1] = 8, cu_seqlens[2] = 5"));
  }
  SECTION("not ending at T") {
    CHECK_THAT(varlen_error(in, cu_of({0, 5, 11})),
               ContainsSubstring("cu_seqlens: expected the last offset cu_seqlens[2] to equal q's "
                                 "T = 12, got 11"));
    CHECK_THAT(varlen_error(in, cu_of({0, 5, 13})),
               ContainsSubstring("cu_seqlens: expected the last offset cu_seqlens[2] to equal q's "
                                 "T = 12, got 13"));
  }
  SECTION("B != 1") {
    auto two = random_inputs<double>({2, 12, 2, 1, 3, 2, 4}, 7);
    CHECK_THAT(varlen_error(two, good),
               ContainsSubstring("q: expected B = 1 with cu_seqlens (the sequences packed along "
                                 "T), got B = 2"));
  }
  SECTION("lam with fewer levels than num_levels(longest sequence)") {
    auto few = random_inputs<double>({1, 12, 2, 1, 3, 2, 3}, 7);
    CHECK_THAT(varlen_error(few, good),
               ContainsSubstring("lam: expected L >= num_levels(5) = 4 levels (the longest "
                                 "sequence of cu_seqlens), got L = 3"));
    // num_levels(longest) suffices even though num_levels(T = 12) = 5.
    auto enough = random_inputs<double>({1, 12, 2, 1, 3, 2, 4}, 7);
    CHECK(varlen_error(enough, good).empty());
  }
  SECTION("a packed input whose T differs from q's") {
    auto shorter = random_inputs<double>({1, 11, 2, 1, 3, 2, 4}, 7);
    OwnedInputs<double> mixed = in;
    mixed.v = shorter.v;
    CHECK_THAT(varlen_error(mixed, good),
               ContainsSubstring("v: expected B = 1 and T = 12 (as q) with cu_seqlens, got shape "
                                 "[1,11,2,2]"));
  }
  SECTION("bad values name the sequence they are in") {
    in.g(0, 6, 1) = 0.5;  // token 6 is row 1 of sequence 1
    CHECK_THAT(varlen_error(in, good),
               ContainsSubstring("g: expected log-decay values <= 0, got 0.500000 at flat index 3 "
                                 "(in sequence 1, tokens [5, 8) of cu_seqlens)"));
  }
  SECTION("output and gradient shapes") {
    Tensor<double, 4> o({1, 11, 2, 2});
    CHECK_THROWS_WITH(forward_varlen<double>(Form::naive, in.view(), good, ChunkedOptions{}, o),
                      ContainsSubstring("o: expected shape [1,12,2,2] = [1,T,H,V], "
                                        "got [1,11,2,2]"));
    AttentionGradTensors<double> gr(dims_of(in));
    CHECK_THROWS_WITH(backward_varlen<double>(Form::naive, in.view(), good, ChunkedOptions{}, o,
                                              gr.views()),
                      ContainsSubstring("dout: expected shape [1,12,2,2] = [1,T,H,V], "
                                        "got [1,11,2,2]"));
    gr.dg = Tensor<double, 3>({1, 12, 1});
    CHECK_THROWS_WITH(backward_varlen<double>(Form::naive, in.view(), good, ChunkedOptions{},
                                              in.dout, gr.views()),
                      ContainsSubstring("dg: expected shape [1,12,2] (as g), got [1,12,1]"));
  }
  SECTION("a chunk size that is not a power of two") {
    Tensor<double, 4> o(in.v.shape());
    CHECK_THROWS_WITH(forward_varlen<double>(Form::chunked, in.view(), good, ChunkedOptions{3}, o),
                      ContainsSubstring("chunk_size: expected a power of two >= 1, got 3"));
  }
}
