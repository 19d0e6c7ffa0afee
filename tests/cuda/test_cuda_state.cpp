// The carried Fenwick state on the GPU (issue 15 item 3; cuda/src/attention/chunked_state.cu):
// the CUDA chunked forward and backward that continue a state and return the state after the
// call, against the CPU chunked form with the same StateIO in double. Splits at t0 = 0 (a prefill
// returning its state), odd t0 (the GPU then runs with C = 1), t0 not a multiple of C and
// chunk-aligned t0, with G > 1, K != V and T not a multiple of C.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/decoder.hpp>
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/decoder.hpp>

#include "../support/compare.hpp"
#include "../support/bf16.hpp"
#include "../support/random_inputs.hpp"
#include "../support/require_gpu.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <tuple>
#include <type_traits>
#include <vector>

using namespace loglinear;
using namespace loglinear::test;


namespace {

struct StateCase {
  Sizes s;       // the call's sizes (T tokens after t0)
  Index t0;      // tokens before the call
  Index C;       // requested chunk size
};

// The state after a random prefix of t0 tokens, from the CPU recurrent form in double.
FenwickState<double> prefix_state(const Sizes& s, Index t0, std::uint64_t seed) {
  FenwickState<double> st;
  if (t0 == 0) return st;
  auto pre = random_inputs<double>({s.B, t0, s.H, s.G, s.K, s.V}, seed);
  Tensor<double, 4> o(pre.v.shape());
  recurrent_forward<double>(pre.view(), o, {nullptr, &st});
  return st;
}

FenwickState<float> to_float(const FenwickState<double>& st) { return {st.tokens, cast<float>(st.S)}; }

// Tokens [a, a + n) of every sequence of `in`, as inputs of their own (copies: the [B,T,...] rows
// of one token range are not contiguous for B > 1).
OwnedInputs<float> token_rows(const OwnedInputs<float>& in, Index a, Index n) {
  const Index B = in.v.dim(0), T = in.v.dim(1);
  auto part = random_inputs<float>({B, n, in.v.dim(2), in.q.dim(2), in.q.dim(3), in.v.dim(3), in.lam.dim(3)}, 0);
  auto copy = [&](const auto& src, auto& dst) {
    const Index inner = src.size() / (B * T);
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < n; ++t)
        for (Index i = 0; i < inner; ++i) dst.values()[(b * n + t) * inner + i] = src.values()[(b * T + a + t) * inner + i];
  };
  copy(in.q, part.q); copy(in.k, part.k); copy(in.v, part.v); copy(in.g, part.g); copy(in.lam, part.lam);
  copy(in.dout, part.dout);
  return part;
}

// A float buffer on the device holding `n` values, freed at scope exit.
struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(Index n) { REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p), size_t(n) * sizeof(float)) == cudaSuccess); }
  ~DeviceFloats() { cudaFree(p); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
};

}  // namespace

TEST_CASE("cuda: a chunked call that continues a carried state and returns the final state matches the "
          "CPU chunked form in double, forward and every gradient",
          "[cuda][gpu][state]") {
  REQUIRE_GPU();
  const StateCase c = GENERATE(StateCase{{2, 37, 2, 1, 16, 8}, 0, 16},     // a prefill: final state only
                               StateCase{{1, 200, 4, 2, 32, 24}, 1, 64},    // odd t0: C = 1 on the GPU
                               StateCase{{2, 45, 3, 3, 8, 12}, 5, 16},      // t0 not a multiple of C
                               StateCase{{1, 150, 2, 1, 64, 32}, 100, 64},  // 100 = 4 x 25: C = 4
                               StateCase{{1, 300, 2, 2, 32, 64}, 128, 64},  // chunk-aligned
                               StateCase{{2, 1, 2, 1, 16, 16}, 77, 64},     // one token after 77
                               StateCase{{1, 129, 1, 1, 64, 64}, 4096, 64}); // many carried levels
  const auto seed = fresh_seed();
  CAPTURE(describe(c.s), c.t0, c.C, seed, cuda::device_name());
  Sizes s = c.s;
  s.L = num_levels(c.t0 + s.T) + 1;  // one level more than needed, which must stay unread
  const auto in64 = random_inputs<double>(s, seed);
  const auto in32 = random_inputs<float>(s, seed);
  const FenwickState<double> S0 = prefix_state(s, c.t0, seed + 1);
  const FenwickState<float> S0f = to_float(S0);
  const FenwickState<double>* init64 = c.t0 > 0 ? &S0 : nullptr;
  const FenwickState<float>* init32 = c.t0 > 0 ? &S0f : nullptr;

  // Forward: o and the final state. float32 FFMA kernels against double: 1e-4 normwise, the bound
  // of the stateless kernels (the state terms are float32 products and exponentials of decay sums).
  Tensor<double, 4> o_ref(in64.v.shape());
  FenwickState<double> fin_ref;
  chunked_forward<double>(in64.view(), {c.C}, o_ref, {init64, &fin_ref});
  Tensor<float, 4> o_gpu(in32.v.shape());
  FenwickState<float> fin_gpu;
  cuda::chunked_forward<float>(in32.view(), {c.C}, o_gpu, init32, &fin_gpu);
  CHECK(fin_gpu.tokens == c.t0 + s.T);
  REQUIRE(fin_gpu.S.shape() == fin_ref.S.shape());
  for (const auto& cmp : {compare("o", o_gpu, o_ref), compare("final state", fin_gpu.S, fin_ref.S)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-4);
  }

  // Backward with a random gradient at the final state.
  std::mt19937_64 rng(seed + 2);
  std::normal_distribution<double> normal(0.0, 1.0);
  Tensor<double, 5> dF(fin_ref.S.shape());
  for (auto& x : dF.values()) x = normal(rng);
  const Tensor<float, 5> dFf = cast<float>(dF);
  const AttentionDims d{s.B, s.T, s.H, s.G, s.K, s.V, s.L};
  AttentionGradTensors<double> ref(d);
  Tensor<double, 5> dS0_ref;
  chunked_backward<double>(in64.view(), {c.C}, in64.dout, ref.views(), {init64, nullptr}, &dF, &dS0_ref);
  AttentionGradTensors<float> gpu(d);
  Tensor<float, 5> dS0_gpu;
  cuda::chunked_backward<float>(in32.view(), {c.C}, in32.dout, gpu.views(), init32, &dFf, &dS0_gpu);
  for (const auto& cmp : {compare("dq", gpu.dq, ref.dq), compare("dk", gpu.dk, ref.dk),
                          compare("dv", gpu.dv, ref.dv), compare("dg", gpu.dg, ref.dg),
                          compare("dlam", gpu.dlam, ref.dlam)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-4);
  }
  REQUIRE(dS0_gpu.shape() == dS0_ref.shape());
  if (c.t0 > 0) {
    const auto cmp = compare("d_initial", dS0_gpu, dS0_ref);
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-4);
  }
}


TEST_CASE("cuda: bf16 storage with a carried state (tensor-core stages from chunk z0 > 0) matches double",
          "[cuda][gpu][state][bf16]") {
  REQUIRE_GPU();
  // t0 = 128 and 192: chunk-aligned, so the tensor-core kernels run from z0 = 2 and 3 (K, V = 64);
  // t0 = 40: C drops to 8 and the bf16 FFMA kernels run.
  const Index t0 = GENERATE(Index(128), Index(192), Index(40));
  const Sizes base{1, 200, 2, 1, 64, 64, 0};
  const auto seed = fresh_seed();
  CAPTURE(t0, seed);
  Sizes s = base;
  s.L = num_levels(t0 + s.T);
  auto in32 = random_inputs<float>(s, seed);
  round_all(in32.q); round_all(in32.k); round_all(in32.v); round_all(in32.dout);
  const OwnedInputs<double> in64{cast<double>(in32.q), cast<double>(in32.k), cast<double>(in32.v),
                                 cast<double>(in32.lam), cast<double>(in32.g), cast<double>(in32.dout)};
  const FenwickState<double> S0 = prefix_state(s, t0, seed + 1);
  const FenwickState<float> S0f = to_float(S0);
  Tensor<double, 4> o_ref(in64.v.shape());
  FenwickState<double> fin_ref;
  chunked_forward<double>(in64.view(), {64}, o_ref, {&S0, &fin_ref});
  Tensor<float, 4> o_gpu(in32.v.shape());
  FenwickState<float> fin_gpu;
  cuda::chunked_forward<float>(in32.view(), {64}, o_gpu, &S0f, &fin_gpu, cuda::Precision::bf16);
  // bf16 operands inside the kernels (P and Hin products, bf16 outputs): 1e-2 as the stateless
  // bf16 test; the state is float32.
  for (const auto& cmp : {compare("o", o_gpu, o_ref), compare("final state", fin_gpu.S, fin_ref.S)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-2);
  }
  Tensor<double, 5> dF(fin_ref.S.shape());
  std::mt19937_64 rng(seed + 2);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto& x : dF.values()) x = normal(rng);
  const Tensor<float, 5> dFf = cast<float>(dF);
  const AttentionDims d{s.B, s.T, s.H, s.G, s.K, s.V, s.L};
  AttentionGradTensors<double> ref(d);
  Tensor<double, 5> dS0_ref;
  chunked_backward<double>(in64.view(), {64}, in64.dout, ref.views(), {&S0, nullptr}, &dF, &dS0_ref);
  AttentionGradTensors<float> gpu(d);
  Tensor<float, 5> dS0_gpu;
  cuda::chunked_backward<float>(in32.view(), {64}, in32.dout, gpu.views(), &S0f, &dFf, &dS0_gpu,
                                cuda::Precision::bf16);
  for (const auto& cmp : {compare("dq", gpu.dq, ref.dq), compare("dk", gpu.dk, ref.dk),
                          compare("dv", gpu.dv, ref.dv), compare("dg", gpu.dg, ref.dg),
                          compare("dlam", gpu.dlam, ref.dlam), compare("d_initial", dS0_gpu, dS0_ref)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-2);
  }
}

TEST_CASE("cuda: a sequence split at any token and continued from the GPU's own state equals one GPU call",
          "[cuda][gpu][state]") {
  REQUIRE_GPU();
  const Index split = GENERATE(1, 31, 64, 100);
  const Sizes s{2, 257, 2, 1, 32, 16, 0};
  const auto seed = fresh_seed();
  CAPTURE(split, seed);
  const auto in = random_inputs<float>(s, seed);
  Tensor<float, 4> o_whole(in.v.shape());
  FenwickState<float> fin_whole;
  cuda::chunked_forward<float>(in.view(), {64}, o_whole, nullptr, &fin_whole);
  const auto first = token_rows(in, 0, split), second = token_rows(in, split, s.T - split);
  Tensor<float, 4> o1(first.v.shape()), o2(second.v.shape());
  FenwickState<float> mid, fin;
  cuda::chunked_forward<float>(first.view(), {64}, o1, nullptr, &mid);
  cuda::chunked_forward<float>(second.view(), {64}, o2, &mid, &fin);
  double worst = 0, scale = 0;
  for (Index b = 0; b < s.B; ++b)
    for (Index t = 0; t < s.T; ++t)
      for (Index h = 0; h < s.H; ++h)
        for (Index j = 0; j < s.V; ++j) {
          const double joined = t < split ? o1(b, t, h, j) : o2(b, t - split, h, j);
          worst = std::max(worst, std::abs(joined - double(o_whole(b, t, h, j))));
          scale = std::max(scale, std::abs(double(o_whole(b, t, h, j))));
        }
  // Two float32 GPU computations of the same sums in different orders: 1e-5 of the largest output.
  CHECK(worst <= 1e-5 * scale);
  const auto cmp = compare("final state", fin.S, fin_whole.S);
  INFO(cmp.report());
  CHECK(cmp.max_rel <= 1e-5);
}

TEST_CASE("cuda: the device decode step continues a GPU prefill's state on the device and equals one CPU "
          "call in double, token by token",
          "[cuda][gpu][state][decoder]") {
  REQUIRE_GPU();
  // Prefills of one token, of an unaligned 37 and of one full chunk (64), then 40 decoded tokens:
  // the decoded positions cross the level boundaries of 64 and of 32 + 64.
  const Index P = GENERATE(1, 37, 64), D = 40;
  Sizes s{2, P + D, 4, 2, 32, 24, 0};
  s.L = num_levels(s.T) + 1;  // one level more than needed, which must stay unread
  const auto seed = fresh_seed();
  CAPTURE(describe(s), P, seed, cuda::device_name());
  const auto in64 = random_inputs<double>(s, seed);
  const auto in32 = random_inputs<float>(s, seed);
  Tensor<double, 4> o_ref(in64.v.shape());
  FenwickState<double> fin_ref;
  chunked_forward<double>(in64.view(), {16}, o_ref, {nullptr, &fin_ref});

  // The prefill on the GPU (host API: its state comes back to the host once).
  const auto pre = token_rows(in32, 0, P);
  Tensor<float, 4> o_pre(pre.v.shape());
  FenwickState<float> st;
  cuda::chunked_forward<float>(pre.view(), {64}, o_pre, nullptr, &st);
  REQUIRE(st.tokens == P);

  // The decode loop's state: [B,H,Lmax,K,V] with Lmax = num_levels(T), the prefill's
  // num_levels(P) levels first and zeros above (levels not yet reached hold nothing).
  const Index B = s.B, H = s.H, G = s.G, K = s.K, V = s.V, L = s.L, Lmax = num_levels(s.T);
  Tensor<float, 5> state({B, H, Lmax, K, V});
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index l = 0; l < st.S.dim(2); ++l)
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j) state(b, h, l, i, j) = st.S(b, h, l, i, j);
  DeviceFloats d_state(state.size()), d_q(B * G * K), d_k(B * G * K), d_v(B * H * V), d_g(B * H), d_lam(B * H * L),
      d_o(B * H * V);
  cudaStream_t stream;
  REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
  REQUIRE(cudaMemcpy(d_state.p, state.data(), size_t(state.size()) * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  const cuda::DecodeDims dd{B, H, G, K, V, L, Lmax};
  Tensor<float, 3> q({B, G, K}), k({B, G, K}), v({B, H, V}), lam({B, H, L}), o({B, H, V});
  Tensor<float, 2> g({B, H});
  double worst = 0;
  for (Index t = P; t < s.T; ++t) {
    Tensor<double, 3> o_want({B, H, V});
    for (Index b = 0; b < B; ++b) {
      for (Index gr = 0; gr < G; ++gr)
        for (Index i = 0; i < K; ++i) { q(b, gr, i) = in32.q(b, t, gr, i); k(b, gr, i) = in32.k(b, t, gr, i); }
      for (Index h = 0; h < H; ++h) {
        g(b, h) = in32.g(b, t, h);
        for (Index j = 0; j < V; ++j) { v(b, h, j) = in32.v(b, t, h, j); o_want(b, h, j) = o_ref(b, t, h, j); }
        for (Index l = 0; l < L; ++l) lam(b, h, l) = in32.lam(b, t, h, l);
      }
    }
    auto up = [&](float* dst, const auto& src) {
      REQUIRE(cudaMemcpyAsync(dst, src.data(), size_t(src.size()) * sizeof(float), cudaMemcpyHostToDevice, stream) ==
              cudaSuccess);
    };
    up(d_q.p, q); up(d_k.p, k); up(d_v.p, v); up(d_g.p, g); up(d_lam.p, lam);
    cuda::decode_step_device(dd, d_state.p, t, d_q.p, d_k.p, d_v.p, d_g.p, d_lam.p, d_o.p, stream);
    REQUIRE(cudaMemcpyAsync(o.data(), d_o.p, size_t(o.size()) * sizeof(float), cudaMemcpyDeviceToHost, stream) ==
            cudaSuccess);
    REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
    // float32 state and products against double: the bound of the host decode test (1e-4).
    const auto c = compare("decoded o_t", o, o_want);
    worst = std::max(worst, c.max_rel);
    INFO("t = " << t << ": " << c.report());
    REQUIRE(c.max_rel <= 1e-4);
  }
  CHECK(worst <= 1e-4);
  // The state the device kept equals the CPU's final state of one call over all T tokens.
  REQUIRE(cudaMemcpy(state.data(), d_state.p, size_t(state.size()) * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  REQUIRE(state.shape() == fin_ref.S.shape());
  const auto cmp = compare("state after decoding", state, fin_ref.S);
  INFO(cmp.report());
  CHECK(cmp.max_rel <= 1e-4);
  cudaStreamDestroy(stream);
}

TEST_CASE("cuda: a ragged decode step (streams at different positions, one launch) equals the CPU decoder of "
          "each stream alone, ignores and zeroes the state's padding, and marks a count out of range",
          "[cuda][gpu][state]") {
  REQUIRE_GPU();
  // Positions that cover each case of the cascade: an empty stream, one token, one below a power
  // of two (its second step, at t = 32, spills into a level it never held), a power of two and an
  // odd count; V = 40 spans two column blocks of the kernel. Lmax is one level more than needed.
  const std::vector<Index> t0{0, 1, 31, 32, 45};
  const Index B = Index(t0.size()), H = 4, G = 2, K = 8, V = 40, steps = 5;
  const Index T = 45 + steps, L = num_levels(T + 1), Lmax = L + 1;
  const auto seed = fresh_seed();
  CAPTURE(seed, cuda::device_name());
  const Sizes s{B, T, H, G, K, V, L};
  const auto in64 = random_inputs<double>(s, seed);
  const auto in32 = random_inputs<float>(s, seed);
  // One token of stream b: its rows of the inputs at position t, as [1,...] tensors.
  auto token = [&](const auto& in, Index b, Index t) {
    using S = std::decay_t<decltype(in.q(0, 0, 0, 0))>;
    Tensor<S, 3> q({1, G, K}), k({1, G, K}), v({1, H, V}), lam({1, H, L});
    Tensor<S, 2> g({1, H});
    for (Index gr = 0; gr < G; ++gr)
      for (Index i = 0; i < K; ++i) { q(0, gr, i) = in.q(b, t, gr, i); k(0, gr, i) = in.k(b, t, gr, i); }
    for (Index h = 0; h < H; ++h) {
      g(0, h) = in.g(b, t, h);
      for (Index j = 0; j < V; ++j) v(0, h, j) = in.v(b, t, h, j);
      for (Index l = 0; l < L; ++l) lam(0, h, l) = in.lam(b, t, h, l);
    }
    return std::make_tuple(q, k, v, g, lam);
  };
  // The CPU reference: one Decoder per stream, fed that stream's prefix.
  std::vector<Decoder<double>> dec;
  Tensor<double, 3> o1({1, H, V});
  for (Index b = 0; b < B; ++b) {
    dec.emplace_back(1, H, G, K, V);
    for (Index t = 0; t < t0[size_t(b)]; ++t) {
      const auto [q, k, v, g, lam] = token(in64, b, t);
      dec.back().step(q, k, v, g, lam, o1);
    }
  }
  // The ragged state: each stream's levels, then padding that holds garbage (1e30), which the
  // kernel must neither read nor leave behind.
  Tensor<float, 5> state({B, H, Lmax, K, V});
  for (Index i = 0; i < state.size(); ++i) state.data()[i] = 1e30f;
  for (Index b = 0; b < B; ++b) {
    const auto st = dec[size_t(b)].state();
    for (Index h = 0; h < H; ++h)
      for (Index l = 0; l < st.S.dim(2); ++l)
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j) state(b, h, l, i, j) = float(st.S(0, h, l, i, j));
  }
  DeviceFloats d_state(state.size()), d_q(B * G * K), d_k(B * G * K), d_v(B * H * V), d_g(B * H), d_lam(B * H * L),
      d_o(B * H * V);
  DeviceFloats d_tokens_storage(2 * B);  // B int64 counts (two floats each), freed on any exit
  auto* d_tokens = reinterpret_cast<std::int64_t*>(d_tokens_storage.p);
  REQUIRE(cudaMemcpy(d_state.p, state.data(), size_t(state.size()) * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  const cuda::DecodeDims dd{B, H, G, K, V, L, Lmax};
  Tensor<float, 3> q({B, G, K}), k({B, G, K}), v({B, H, V}), lam({B, H, L}), o({B, H, V});
  Tensor<float, 2> g({B, H});
  // One ragged step: stream b consumes its token number counts[b]; o comes back to the host.
  // The same streams in a zero-padded state of L levels stepped with padding_is_zero and the
  // capacity count (what loglinear.torch.Decoder does: no count on the host): o0 must equal o.
  Tensor<float, 5> state0({B, H, L, K, V});
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index l = 0; l < L; ++l)
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j) state0(b, h, l, i, j) = state(b, h, l, i, j) == 1e30f ? 0.f : state(b, h, l, i, j);
  DeviceFloats d_state0(state0.size()), d_o0(B * H * V);
  REQUIRE(cudaMemcpy(d_state0.p, state0.data(), size_t(state0.size()) * sizeof(float), cudaMemcpyHostToDevice) ==
          cudaSuccess);
  const cuda::DecodeDims dd0{B, H, G, K, V, L, L};
  const Index capacity = (Index(1) << (L - 1)) - 1;
  Tensor<float, 3> o0({B, H, V});
  auto step = [&](const std::vector<std::int64_t>& counts, Index max_tokens, bool zero_padded_too = false) {
    for (Index b = 0; b < B; ++b) {
      const Index t = std::clamp<Index>(counts[size_t(b)], 0, T - 1);  // inputs of a valid row even for a bad count
      const auto [qb, kb, vb, gb, lb] = token(in32, b, t);
      for (Index gr = 0; gr < G; ++gr)
        for (Index i = 0; i < K; ++i) { q(b, gr, i) = qb(0, gr, i); k(b, gr, i) = kb(0, gr, i); }
      for (Index h = 0; h < H; ++h) {
        g(b, h) = gb(0, h);
        for (Index j = 0; j < V; ++j) v(b, h, j) = vb(0, h, j);
        for (Index l = 0; l < L; ++l) lam(b, h, l) = lb(0, h, l);
      }
    }
    auto up = [](float* dst, const auto& src) {
      REQUIRE(cudaMemcpy(dst, src.data(), size_t(src.size()) * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
    };
    up(d_q.p, q); up(d_k.p, k); up(d_v.p, v); up(d_g.p, g); up(d_lam.p, lam);
    REQUIRE(cudaMemcpy(d_tokens, counts.data(), size_t(B) * sizeof(std::int64_t), cudaMemcpyHostToDevice) == cudaSuccess);
    cuda::decode_step_device_ragged(dd, d_state.p, max_tokens, d_tokens, d_q.p, d_k.p, d_v.p, d_g.p, d_lam.p, d_o.p);
    REQUIRE(cudaMemcpy(o.data(), d_o.p, size_t(o.size()) * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    if (!zero_padded_too) return;
    cuda::decode_step_device_ragged(dd0, d_state0.p, capacity, d_tokens, d_q.p, d_k.p, d_v.p, d_g.p, d_lam.p, d_o0.p,
                                    nullptr, true);
    REQUIRE(cudaMemcpy(o0.data(), d_o0.p, size_t(o0.size()) * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
    Index differ = 0;
    for (Index i = 0; i < o.size(); ++i) differ += o.data()[i] != o0.data()[i] ? 1 : 0;
    CHECK(differ == 0);  // the same arithmetic in the same order: equal, not close
  };

  double worst = 0;
  for (Index i = 0; i < steps; ++i) {
    std::vector<std::int64_t> counts;
    for (Index b = 0; b < B; ++b) counts.push_back(t0[size_t(b)] + i);
    step(counts, 45 + i, true);
    for (Index b = 0; b < B; ++b) {
      const auto [qd, kd, vd, gd, ld] = token(in64, b, counts[size_t(b)]);
      dec[size_t(b)].step(qd, kd, vd, gd, ld, o1);
      Tensor<float, 3> ob({1, H, V});
      for (Index h = 0; h < H; ++h)
        for (Index j = 0; j < V; ++j) ob(0, h, j) = o(b, h, j);
      // float32 state and products against double: the bound of the uniform decode tests (1e-4).
      const auto c = compare("ragged o_t", ob, o1);
      worst = std::max(worst, c.max_rel);
      INFO("step " << i << ", stream " << b << " at t = " << counts[size_t(b)] << ": " << c.report());
      REQUIRE(c.max_rel <= 1e-4);
    }
  }
  CHECK(worst <= 1e-4);
  // The state: each stream's levels equal its CPU decoder's, and everything above them is zero.
  REQUIRE(cudaMemcpy(state.data(), d_state.p, size_t(state.size()) * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (Index b = 0; b < B; ++b) {
    const auto st = dec[size_t(b)].state();
    Tensor<float, 5> mine({1, H, st.S.dim(2), K, V});
    Index nonzero_padding = 0;
    for (Index h = 0; h < H; ++h)
      for (Index l = 0; l < Lmax; ++l)
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j) {
            if (l < st.S.dim(2)) mine(0, h, l, i, j) = state(b, h, l, i, j);
            else if (l < L && state(b, h, l, i, j) != 0.f) ++nonzero_padding;  // level L - 1 < Lmax: written
          }
    const auto c = compare("ragged state", mine, st.S);
    INFO("stream " << b << ": " << c.report());
    CHECK(c.max_rel <= 1e-4);
    CHECK(nonzero_padding == 0);
  }

  // The zero-padded state stepped with padding_is_zero: its levels equal the other's, the padding
  // is still zero.
  REQUIRE(cudaMemcpy(state0.data(), d_state0.p, size_t(state0.size()) * sizeof(float), cudaMemcpyDeviceToHost) ==
          cudaSuccess);
  Index mismatched = 0;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index l = 0; l < L; ++l)
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j) mismatched += state0(b, h, l, i, j) != state(b, h, l, i, j) ? 1 : 0;
  CHECK(mismatched == 0);

  // Counts outside [0, max_tokens]: those streams' outputs are NaN and their states unchanged;
  // the others step as usual.
  Tensor<float, 5> before = state;
  std::vector<std::int64_t> counts;
  for (Index b = 0; b < B; ++b) counts.push_back(t0[size_t(b)] + steps);
  counts[1] = -1;
  counts[3] = 45 + steps + 1;  // above max_tokens below
  step(counts, 45 + steps);
  REQUIRE(cudaMemcpy(state.data(), d_state.p, size_t(state.size()) * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (Index b = 0; b < B; ++b) {
    const bool bad = b == 1 || b == 3;
    Index nan = 0, changed = 0;
    for (Index h = 0; h < H; ++h) {
      for (Index j = 0; j < V; ++j) nan += std::isnan(o(b, h, j)) ? 1 : 0;
      for (Index l = 0; l < Lmax; ++l)
        for (Index i = 0; i < K; ++i)
          for (Index j = 0; j < V; ++j) changed += state(b, h, l, i, j) != before(b, h, l, i, j) ? 1 : 0;
    }
    INFO("stream " << b << (bad ? " (count out of range)" : ""));
    CHECK(nan == (bad ? H * V : 0));
    if (bad) CHECK(changed == 0);
    else CHECK(changed > 0);
  }
}

TEST_CASE("cuda: the ragged decode step refuses a missing count array and the sizes of the uniform step",
          "[cuda][errors]") {
  using Catch::Matchers::ContainsSubstring;
  float dummy[64] = {};
  std::int64_t counts[1] = {0};
  const cuda::DecodeDims dd{1, 2, 1, 4, 4, 3, 3};
  CHECK_THROWS_WITH(cuda::decode_step_device_ragged(dd, dummy, 1, nullptr, dummy, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("stream_tokens: expected a device pointer to B token counts, got nullptr"));
  CHECK_THROWS_WITH(cuda::decode_step_device_ragged(dd, dummy, 9, counts, dummy, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("state: expected [B,H,Lmax,K,V] with Lmax >= num_levels(10) = 5, got Lmax = 3"));
  CHECK_THROWS_WITH(cuda::decode_step_device_ragged(dd, dummy, -1, counts, dummy, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("tokens: expected >= 0, got -1"));
  CHECK_THROWS_WITH(cuda::decode_step_device_ragged(dd, dummy, 1, counts, nullptr, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("q_t: expected a device pointer, got nullptr"));
}

TEST_CASE("cuda: the stateful device API refuses a missing or unexpected initial state before any launch",
          "[cuda][errors]") {
  using Catch::Matchers::ContainsSubstring;
  AttentionDims d{1, 8, 1, 1, 4, 4, num_levels(24)};
  d.t0 = 16;
  const ChunkedOptions opts{64};
  float dummy[64] = {};
  const cuda::DeviceInputs<float> in{dummy, dummy, dummy, dummy, dummy};
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, d, opts, dummy, nullptr, 1u << 30, nullptr,
                                                        cuda::DeviceState{}),
                    ContainsSubstring("state.initial: expected a device pointer") &&
                        ContainsSubstring("dims.t0 = 16"));
  d.t0 = 0;
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, d, opts, dummy, nullptr, 1u << 30, nullptr,
                                                        cuda::DeviceState{dummy, nullptr}),
                    ContainsSubstring("state.initial: expected nullptr when dims.t0 = 0"));
  d.t0 = 16;
  d.L = num_levels(16);  // short of num_levels(t0 + T) = num_levels(24)
  CHECK_THROWS_WITH(cuda::chunked_workspace_bytes(d, opts, cuda::Precision::fp32, false),
                    ContainsSubstring("dims.L: expected >= num_levels(t0 + T)"));
  FenwickState<float> same{16, Tensor<float, 5>({1, 1, num_levels(16), 4, 4})};
  Tensor<float, 4> q({1, 8, 1, 4}), k({1, 8, 1, 4}), v({1, 8, 1, 4}), lam({1, 8, 1, num_levels(24)}), o({1, 8, 1, 4});
  Tensor<float, 3> g({1, 8, 1});
  CHECK_THROWS_WITH(cuda::chunked_forward<float>({q, k, v, g, lam}, opts, o, &same, &same),
                    ContainsSubstring("final: expected a FenwickState other than initial"));
  d.L = num_levels(24);
  d.t0 = -1;
  CHECK_THROWS_WITH(cuda::chunked_workspace_bytes(d, opts, cuda::Precision::fp32, false),
                    ContainsSubstring("dims.t0: expected tokens before the call"));
}
