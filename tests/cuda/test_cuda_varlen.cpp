// Packed sequences on the GPU (cu_seqlens; cuda/loglinear/cuda/chunked.hpp,
// chunked_forward_varlen / chunked_backward_varlen): one launch sequence for all sequences, each
// its own Fenwick tree with chunks aligned to its start, against the CPU's forward_varlen /
// backward_varlen (Form::chunked) in double. Lengths of one token, of exactly C and C + 1, a
// sequence much longer than the others (most chunk slots of the short ones are skipped), G > 1,
// K != V, chunk sizes 16 and 64; float32 (FFMA kernels) and bf16 (tensor-core kernels); the
// forward that also returns every sequence's final state (a packed prefill).
#include <loglinear/attention/varlen.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include "../support/bf16.hpp"
#include "../support/compare.hpp"
#include "../support/random_inputs.hpp"
#include "../support/require_gpu.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

namespace {

struct VarlenCase {
  std::vector<Index> lengths;
  Index H, G, K, V, C;
};

Tensor<Index, 1> offsets(const std::vector<Index>& lengths) {
  Tensor<Index, 1> cu({Index(lengths.size()) + 1});
  for (size_t i = 0; i < lengths.size(); ++i) cu(Index(i) + 1) = cu(Index(i)) + lengths[i];
  return cu;
}

std::string describe(const VarlenCase& c) {
  std::string s = "lengths";
  for (Index n : c.lengths) s += " " + std::to_string(n);
  return s + " H=" + std::to_string(c.H) + " G=" + std::to_string(c.G) + " K=" + std::to_string(c.K) +
         " V=" + std::to_string(c.V) + " C=" + std::to_string(c.C);
}

// The CPU reference (double) and the GPU call (float32 inputs, `precision` storage) on the same
// packed inputs; every output and gradient compared normwise with bound `tol`.
void check_case(const VarlenCase& c, cuda::Precision precision, double tol, double g_scale = 1.0) {
  const auto seed = fresh_seed();
  CAPTURE(describe(c), seed, cuda::device_name());
  const Tensor<Index, 1> cu = offsets(c.lengths);
  const Index T = cu(Index(c.lengths.size())), longest = *std::max_element(c.lengths.begin(), c.lengths.end());
  const Sizes s{1, T, c.H, c.G, c.K, c.V, num_levels(longest) + 1};  // one level more than needed
  auto in32 = random_inputs<float>(s, seed, g_scale);
  if (precision == cuda::Precision::bf16) {
    // The bf16 path rounds q, k, v, dout on upload: the reference gets the same rounded values.
    round_all(in32.q); round_all(in32.k); round_all(in32.v); round_all(in32.dout);
  }
  const OwnedInputs<double> in64{cast<double>(in32.q), cast<double>(in32.k), cast<double>(in32.v),
                                 cast<double>(in32.lam), cast<double>(in32.g), cast<double>(in32.dout)};
  Tensor<double, 4> o_ref(in64.v.shape());
  forward_varlen<double>(Form::chunked, in64.view(), cu, {c.C}, o_ref);
  Tensor<float, 4> o_gpu(in32.v.shape());
  cuda::chunked_forward_varlen<float>(in32.view(), cu, {c.C}, o_gpu, precision);
  const auto fwd = compare("o", o_gpu, o_ref);
  INFO(fwd.report());
  CHECK(fwd.max_rel <= tol);

  // The same call returning every sequence's final state (a packed prefill): o unchanged, and each
  // state equals the CPU's for that sequence (its own num_levels(n_i) levels).
  std::vector<FenwickState<double>> fin_ref;
  Tensor<double, 4> o_ref2(in64.v.shape());
  forward_varlen<double>(Form::chunked, in64.view(), cu, {c.C}, o_ref2, VarlenStateIO<double>{nullptr, &fin_ref});
  std::vector<FenwickState<float>> fin_gpu;
  Tensor<float, 4> o_gpu2(in32.v.shape());
  cuda::chunked_forward_varlen<float>(in32.view(), cu, {c.C}, o_gpu2, precision, &fin_gpu);
  const auto fwd2 = compare("o (with final states)", o_gpu2, o_ref);
  INFO(fwd2.report());
  CHECK(fwd2.max_rel <= tol);
  REQUIRE(fin_gpu.size() == c.lengths.size());
  REQUIRE(fin_ref.size() == c.lengths.size());
  for (size_t i = 0; i < c.lengths.size(); ++i) {
    CHECK(fin_gpu[i].tokens == c.lengths[i]);
    REQUIRE(fin_gpu[i].S.shape() == fin_ref[i].S.shape());
    // The state is a sum of decayed k v^T products in float32 (no tensor cores), so it stays within
    // the float32 bound even for bf16 storage (the inputs are the same rounded values).
    const auto st = compare("final state of sequence " + std::to_string(i), fin_gpu[i].S, fin_ref[i].S);
    INFO(st.report());
    CHECK(st.max_rel <= 1e-4);
  }

  const AttentionDims d{1, T, c.H, c.G, c.K, c.V, s.L};
  AttentionGradTensors<double> ref(d);
  backward_varlen<double>(Form::chunked, in64.view(), cu, {c.C}, in64.dout, ref.views());
  AttentionGradTensors<float> gpu(d);
  cuda::chunked_backward_varlen<float>(in32.view(), cu, {c.C}, in32.dout, gpu.views(), precision);
  for (const auto& cmp : {compare("dq", gpu.dq, ref.dq), compare("dk", gpu.dk, ref.dk),
                          compare("dv", gpu.dv, ref.dv), compare("dg", gpu.dg, ref.dg),
                          compare("dlam", gpu.dlam, ref.dlam)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= tol);
  }
}

}  // namespace

TEST_CASE("cuda: packed sequences (cu_seqlens) in one call equal the CPU's varlen chunked form in double",
          "[cuda][gpu][varlen]") {
  REQUIRE_GPU();
  const VarlenCase c = GENERATE(VarlenCase{{7, 1, 20, 9}, 2, 1, 8, 12, 16},       // one token, odd lengths
                                VarlenCase{{64, 65, 3}, 3, 3, 16, 8, 64},         // exactly C and C + 1
                                VarlenCase{{300, 5, 17, 2}, 2, 2, 32, 24, 16},    // one long: most slots skipped
                                VarlenCase{{1}, 1, 1, 4, 4, 64},                  // a single one-token sequence
                                VarlenCase{{129, 77, 200}, 4, 2, 64, 32, 64});    // several chunk levels each
  // float32 FFMA kernels against double: the dense kernels' bound, 1e-4 normwise.
  check_case(c, cuda::Precision::fp32, 1e-4);
}

TEST_CASE("cuda: packed sequences in bf16 storage (tensor-core kernels) match double on the rounded inputs",
          "[cuda][gpu][varlen][bf16]") {
  REQUIRE_GPU();
  // K, V multiples of 16 with C >= 16: the tensor-core kernels; the bound of the dense bf16 path.
  const VarlenCase c = GENERATE(VarlenCase{{64, 65, 3, 130}, 2, 1, 32, 64, 64},
                                VarlenCase{{300, 5, 17}, 2, 2, 16, 16, 16});
  check_case(c, cuda::Precision::bf16, 1e-2);
}

TEST_CASE("cuda: packed sequences with weak decay (every chunk level carries weight) match double",
          "[cuda][gpu][levels]") {  // not [varlen]: the sanitizer runs of [varlen] stay short
  REQUIRE_GPU();
  // g_scale 0.01: tokens many chunks back still count (test_cuda_chunked.cpp's weak-decay case
  // says why the default decay leaves the chunk levels' sums untested); sequences of 2000 and
  // 700 tokens span 5 and 4 chunk levels at C = 64, beside short ones.
  check_case(VarlenCase{{2000, 3, 700, 65}, 2, 1, 64, 64, 64}, cuda::Precision::fp32, 1e-4, 0.01);
  check_case(VarlenCase{{2000, 3, 700, 65}, 2, 1, 64, 64, 64}, cuda::Precision::bf16, 1e-2, 0.01);
}

TEST_CASE("cuda: packed calls refuse bad offsets, a state and bad sizes before any launch", "[cuda][varlen][errors]") {
  const Tensor<Index, 1> good = offsets({3, 5});
  AttentionDims d{1, 8, 2, 1, 4, 4, num_levels(5)};
  // The backward adds the summaries' gradient dU (S H N K V = 2 x 2 x 1 x 16 floats); the forward
  // keeps the decay sums Gpre and Gsuf for final states (S H T = 2 x 2 x 5 floats each), which the
  // backward of a packed call does not need. Each part is rounded up to 64 floats (256 bytes).
  const auto fwd_bytes = cuda::chunked_varlen_workspace_bytes(d, {16}, good, cuda::Precision::fp32, false);
  const auto bwd_bytes = cuda::chunked_varlen_workspace_bytes(d, {16}, good, cuda::Precision::fp32, true);
  CHECK(long(bwd_bytes) - long(fwd_bytes) == 256 - 2 * 256);
  Tensor<Index, 1> bad = offsets({3, 5});
  bad(1) = 9;
  CHECK_THROWS_WITH(cuda::chunked_varlen_workspace_bytes(d, {16}, bad, cuda::Precision::fp32, false),
                    ContainsSubstring("cu_seqlens: expected strictly increasing offsets"));
  const Tensor<Index, 1> short_end = offsets({3, 4});
  CHECK_THROWS_WITH(cuda::chunked_varlen_workspace_bytes(d, {16}, short_end, cuda::Precision::fp32, false),
                    ContainsSubstring("cu_seqlens: expected the last offset"));
  AttentionDims few = d;
  few.L = 2;  // the longest sequence (5 tokens) needs num_levels(5) = 4
  CHECK_THROWS_WITH(cuda::chunked_varlen_workspace_bytes(few, {16}, good, cuda::Precision::fp32, false),
                    ContainsSubstring("lam: expected L >= num_levels(5)"));
  AttentionDims state = d;
  state.t0 = 4;
  CHECK_THROWS_WITH(cuda::chunked_varlen_workspace_bytes(state, {16}, good, cuda::Precision::fp32, false),
                    ContainsSubstring("dims.t0: expected 0 with cu_seqlens"));
  AttentionDims two = d;
  two.B = 2;
  CHECK_THROWS_WITH(cuda::chunked_varlen_workspace_bytes(two, {16}, good, cuda::Precision::fp32, false),
                    ContainsSubstring("q: expected B = 1 with cu_seqlens"));
  CHECK_THROWS_WITH(cuda::chunked_varlen_workspace_bytes(d, {128}, good, cuda::Precision::fp32, false),
                    ContainsSubstring("chunk_size: expected a power of two <= 64 on the GPU"));
  float dummy[4] = {};
  const cuda::DeviceInputs<float> in{dummy, dummy, nullptr, dummy, dummy};
  CHECK_THROWS_WITH(cuda::chunked_forward_varlen_device<float>(in, d, good, {16}, dummy, dummy, 1u << 20),
                    ContainsSubstring("in.v: expected a device pointer"));
  // Host tensors: a bad value is named, as the CPU's varlen form names it.
  const auto x = random_inputs<float>({1, 8, 2, 1, 4, 4, num_levels(5)}, 3);
  auto g_bad = x.g;
  g_bad(0, 6, 1) = 0.25f;
  Tensor<float, 4> o(x.v.shape());
  CHECK_THROWS_WITH(cuda::chunked_forward_varlen<float>({x.q, x.k, x.v, g_bad, x.lam}, good, {16}, o),
                    ContainsSubstring("g: expected log-decay values <= 0"));
}
