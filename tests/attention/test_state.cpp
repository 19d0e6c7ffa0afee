// Initial and final Fenwick states (recurrent.hpp StateIO): a sequence split anywhere and
// resumed equals the whole, and gradients flow through both states (finite differences).
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/compare.hpp"
#include "../support/attention_gradcheck.hpp"
#include "../support/gradcheck.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

using namespace loglinear;
using namespace loglinear::test;

namespace {

// The state after a random prefix of t0 tokens (from the recurrent form itself).
FenwickState<double> prefix_state(Index t0, Index B, Index H, Index K, Index V, std::uint64_t seed) {
  auto pre = random_inputs<double>({B, t0, H, H, K, V}, seed);
  Tensor<double, 4> o(pre.v.shape());
  FenwickState<double> st;
  recurrent_forward<double>(pre.view(), o, {nullptr, &st});
  return st;
}

struct Run {
  Tensor<double, 4> o;
  FenwickState<double> final;
};

Run forward_with_state(bool chunked, const OwnedInputs<double>& in, const FenwickState<double>& S0,
                       Index C) {
  Run r{Tensor<double, 4>(in.v.shape()), {}};
  if (chunked) {
    chunked_forward<double>(in.view(), {C}, r.o, {&S0, &r.final});
  } else {
    recurrent_forward<double>(in.view(), r.o, {&S0, &r.final});
  }
  return r;
}

}  // namespace

TEST_CASE("state: splitting a sequence at any point and resuming equals the whole",
          "[state][cross]") {
  const bool chunked = GENERATE(false, true);
  const Index T = 70;
  const Index split = GENERATE(1, 5, 16, 33, 64, 69);
  const Index C = GENERATE(4, 16);
  const auto seed = fresh_seed();
  CAPTURE(chunked, split, C, seed);
  const auto in = random_inputs<double>({2, T, 3, 3, 4, 2}, seed);
  Tensor<double, 4> o_whole(in.v.shape());
  FenwickState<double> whole_final;
  chunked_forward<double>(in.view(), {C}, o_whole, {nullptr, &whole_final});

  // The halves are copies: with B > 1 a half is not contiguous in the [B,T,...] layout.
  auto slice = [&](Index t_begin, Index t_len) {
    auto out = random_inputs<double>({2, t_len, 3, 3, 4, 2, in.lam.dim(3)}, 0);
    for (Index b = 0; b < 2; ++b)
      for (Index t = 0; t < t_len; ++t)
        for (Index h = 0; h < 3; ++h) {
          out.g(b, t, h) = in.g(b, t_begin + t, h);
          for (Index i = 0; i < 4; ++i) {
            out.q(b, t, h, i) = in.q(b, t_begin + t, h, i);
            out.k(b, t, h, i) = in.k(b, t_begin + t, h, i);
          }
          for (Index j = 0; j < 2; ++j) out.v(b, t, h, j) = in.v(b, t_begin + t, h, j);
          for (Index l = 0; l < in.lam.dim(3); ++l) out.lam(b, t, h, l) = in.lam(b, t_begin + t, h, l);
        }
    return out;
  };
  const auto first = slice(0, split), second = slice(split, T - split);
  FenwickState<double> mid;
  Tensor<double, 4> o1(first.v.shape());
  if (chunked) {
    chunked_forward<double>(first.view(), {C}, o1, {nullptr, &mid});
  } else {
    recurrent_forward<double>(first.view(), o1, {nullptr, &mid});
  }
  const Run r2 = forward_with_state(chunked, second, mid, C);
  Tensor<double, 4> o_joined(in.v.shape());
  for (Index b = 0; b < 2; ++b)
    for (Index t = 0; t < T; ++t)
      for (Index h = 0; h < 3; ++h)
        for (Index j = 0; j < 2; ++j)
          o_joined(b, t, h, j) = t < split ? o1(b, t, h, j) : r2.o(b, t - split, h, j);
  for (const auto& c : {compare("joined outputs", o_joined, o_whole),
                        compare("final state", r2.final.S, whole_final.S)}) {
    INFO(c.report());
    CHECK(c.max_rel <= 1e-10);
  }
  CHECK(r2.final.tokens == T);
}

TEST_CASE("state: gradients through the initial and final states match finite differences",
          "[state][fd]") {
  const bool chunked = GENERATE(false, true);
  const Index t0 = GENERATE(1, 6, 16, 21);
  const Index T = GENERATE(1, 7, 30);
  const Index C = 4;
  const auto seed = fresh_seed();
  CAPTURE(chunked, t0, T, seed);
  auto in = random_inputs<double>({2, T, 2, 1, 3, 2, num_levels(t0 + T) + 1}, seed);
  for (auto& x : in.g.values()) x = std::min(x, -1e-2);
  FenwickState<double> S0 = prefix_state(t0, 2, 2, 3, 2, seed + 1);
  // A random gradient arriving at the final state.
  Tensor<double, 5> dF({2, 2, num_levels(t0 + T), 3, 2});
  std::mt19937_64 rng(seed + 2);
  std::normal_distribution<double> normal;
  for (auto& x : dF.values()) x = normal(rng);

  auto L = [&] {
    const Run r = forward_with_state(chunked, in, S0, C);
    double acc = 0;
    for (Index i = 0; i < r.o.size(); ++i) acc += r.o.values()[i] * in.dout.values()[i];
    for (Index i = 0; i < r.final.S.size(); ++i) acc += r.final.S.values()[i] * dF.values()[i];
    return acc;
  };
  AttentionGradTensors<double> gr({2, T, 2, 1, 3, 2, in.lam.dim(3)});
  Tensor<double, 5> dS0;
  if (chunked) {
    chunked_backward<double>(in.view(), {C}, in.dout, gr.views(), {&S0, nullptr}, &dF, &dS0);
  } else {
    recurrent_backward<double>(in.view(), in.dout, gr.views(), {&S0, nullptr}, &dF, &dS0);
  }
  REQUIRE(dS0.shape() == S0.S.shape());
  // Small tensors in full, larger ones on a sample drawn from this case's seed.
  auto checks = gradcheck_attention(in, gr, L, seed);
  checks.push_back(gradcheck_attention_tensor("dS0", S0.S.data(), dS0.data(), S0.S.size(), L, seed));
  for (const auto& r : checks) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}
