// Initial and final Fenwick states (recurrent.hpp StateIO): a sequence split anywhere and
// resumed equals the whole, and gradients flow through both states (finite differences).
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/compare.hpp"
#include "../support/attention_gradcheck.hpp"
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

TEST_CASE("TMPHELPER state",
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
  auto results = gradcheck_attention(in, gr, L, seed);
  results.push_back(gradcheck_attention_tensor("dS0", S0.S.data(), dS0.data(), S0.S.size(), L, seed));
  for (const auto& r : results) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}
