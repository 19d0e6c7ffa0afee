// CUDA backend (cuda/) against the double-precision CPU reference: forward, all five
// gradients, the decoding step. Without a GPU every GPU case skips with a visible message;
// argument validation happens before any CUDA call and is tested everywhere.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/decoder.hpp>
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

#include <cstdint>
#include <cstring>

using namespace loglinear;
using namespace loglinear::test;


namespace {
struct Case {
  Sizes s;
  Index C;
};
}  // namespace

TEST_CASE("cuda: chunked forward and all five gradients match the double CPU reference",
          "[cuda][gpu][cross]") {
  REQUIRE_GPU();
  const Case c = GENERATE(Case{{2, 1, 2, 1, 32, 64}, 64}, Case{{2, 100, 4, 2, 64, 32}, 64},
                          Case{{1, 257, 2, 2, 128, 64}, 32}, Case{{1, 1000, 2, 1, 64, 64}, 64},
                          Case{{3, 77, 3, 3, 32, 128}, 16}, Case{{1, 4096, 1, 1, 64, 64}, 64},
                          // K and V not multiples of the kernels' 64-column operand tiles (a full
                          // and a partial tile each) and a short last chunk.
                          Case{{2, 150, 2, 1, 100, 72}, 64}, Case{{1, 70, 1, 1, 200, 130}, 32},
                          // Edge shapes (issue 14): T = C (one full chunk, no level state at all)
                          // and T = C + 1 (a second chunk of one token), at both chunk sizes the
                          // kernels tile for; float32 at K = V = 128, the head size at which fla's
                          // float32 path runs out of shared memory.
                          Case{{2, 64, 2, 1, 32, 32}, 64}, Case{{1, 65, 2, 2, 64, 48}, 64},
                          Case{{2, 32, 3, 1, 16, 40}, 32}, Case{{1, 33, 1, 1, 24, 16}, 32},
                          Case{{1, 300, 2, 1, 128, 128}, 64}, Case{{2, 129, 2, 2, 128, 128}, 32});
  const auto seed = fresh_seed();
  CAPTURE(describe(c.s), c.C, seed, cuda::device_name());
  const auto in64 = random_inputs<double>(c.s, seed);
  const auto in32 = random_inputs<float>(c.s, seed);
  Tensor<double, 4> o_ref(in64.v.shape());
  chunked_forward<double>(in64.view(), {c.C}, o_ref);
  Tensor<float, 4> o_gpu(in32.v.shape()), o_cpu32(in32.v.shape());
  cuda::chunked_forward<float>(in32.view(), {c.C}, o_gpu);
  chunked_forward<float>(in32.view(), {c.C}, o_cpu32);
  // FP32 FFMA kernels (no tf32): float rounding only; 1e-4 normwise is the bound.
  const auto fwd = compare("o gpu vs cpu double", o_gpu, o_ref);
  const auto fwd32 = compare("o cpu float vs cpu double", o_cpu32, o_ref);
  INFO(fwd.report());
  INFO(fwd32.report());
  CHECK(fwd.max_rel <= 1e-4);

  const AttentionDims d{c.s.B, c.s.T, c.s.H, c.s.G, c.s.K, c.s.V, in64.lam.dim(3)};
  AttentionGradTensors<double> ref(d);
  chunked_backward<double>(in64.view(), {c.C}, in64.dout, ref.views());
  AttentionGradTensors<float> gpu(d);
  cuda::chunked_backward<float>(in32.view(), {c.C}, in32.dout, gpu.views());
  for (const auto& cmp : {compare("dq", gpu.dq, ref.dq), compare("dk", gpu.dk, ref.dk),
                          compare("dv", gpu.dv, ref.dv), compare("dg", gpu.dg, ref.dg),
                          compare("dlam", gpu.dlam, ref.dlam)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-4);
  }
}

TEST_CASE("cuda: the decoding step equals the reference decoder", "[cuda][gpu][decoder]") {
  REQUIRE_GPU();
  const Index B = 2, H = 4, G = 2, K = 32, V = 16, T = 70, Lmax = num_levels(T);
  const auto in = random_inputs<double>({B, T, H, G, K, V, Lmax}, fresh_seed());
  Decoder<double> ref(B, H, G, K, V);
  Tensor<float, 5> state({B, H, Lmax, K, V});
  double worst = 0;
  for (Index t = 0; t < T; ++t) {
    Tensor<double, 3> q({B, G, K}), k({B, G, K}), v({B, H, V}), lam({B, H, Lmax}), o({B, H, V});
    Tensor<double, 2> g({B, H});
    for (Index b = 0; b < B; ++b) {
      for (Index gr = 0; gr < G; ++gr)
        for (Index i = 0; i < K; ++i) { q(b, gr, i) = in.q(b, t, gr, i); k(b, gr, i) = in.k(b, t, gr, i); }
      for (Index h = 0; h < H; ++h) {
        g(b, h) = in.g(b, t, h);
        for (Index j = 0; j < V; ++j) v(b, h, j) = in.v(b, t, h, j);
        for (Index l = 0; l < Lmax; ++l) lam(b, h, l) = in.lam(b, t, h, l);
      }
    }
    ref.step(q, k, v, g, lam, o);
    Tensor<float, 3> o32({B, H, V});
    cuda::decode_step<float>(state, t, cast<float>(q), cast<float>(k), cast<float>(v), cast<float>(g),
                             cast<float>(lam), o32);
    const auto c = compare("decode step", o32, o);
    worst = std::max(worst, c.max_rel);
    INFO("t = " << t << ": " << c.report());
    REQUIRE(c.max_rel <= 1e-4);
  }
  CHECK(worst <= 1e-4);
}

TEST_CASE("cuda: bad arguments are rejected before any launch", "[cuda][errors]") {
  using Catch::Matchers::ContainsSubstring;
  const auto in = random_inputs<float>({1, 9, 2, 1, 4, 4}, 1);
  Tensor<float, 4> o(in.v.shape());
  CHECK_THROWS_WITH(cuda::chunked_forward<float>(in.view(), {128}, o),
                    ContainsSubstring("chunk_size: expected a power of two <= 64 on the GPU"));
  CHECK_THROWS_WITH(cuda::chunked_forward<float>(in.view(), {48}, o),
                    ContainsSubstring("chunk_size: expected a power of two"));
  auto bad = random_inputs<float>({1, 9, 2, 1, 4, 4}, 1);
  bad.g(0, 3, 1) = 0.5f;
  CHECK_THROWS_WITH(cuda::chunked_forward<float>(bad.view(), {16}, o), ContainsSubstring("g: expected log-decay values <= 0"));
  Tensor<float, 4> o_bad({1, 9, 2, 5});
  CHECK_THROWS_WITH(cuda::chunked_forward<float>(in.view(), {16}, o_bad), ContainsSubstring("o: expected shape [1,9,2,4]"));
  if (!cuda::device_available()) {
    CHECK_THROWS_WITH(cuda::chunked_forward<float>(in.view(), {16}, o), ContainsSubstring("no CUDA device"));
    CHECK_THROWS_AS(cuda::device_name(), std::runtime_error);
  }
}


TEST_CASE("cuda: bf16 storage (tensor-core forward) matches the double reference on the rounded inputs",
          "[cuda][gpu][bf16]") {
  REQUIRE_GPU();
  // K, V multiples of 16 take the WMMA forward; K = 20 / V = 24 the templated FFMA fallback.
  const Case c = GENERATE(Case{{2, 1, 2, 1, 32, 64}, 64}, Case{{2, 100, 4, 2, 64, 32}, 64},
                          Case{{1, 257, 2, 2, 128, 64}, 32}, Case{{1, 1000, 2, 1, 64, 128}, 64},
                          Case{{3, 77, 3, 3, 32, 128}, 16}, Case{{1, 3000, 1, 1, 128, 128}, 64},
                          Case{{2, 130, 2, 1, 20, 24}, 32},
                          // T = C and T = C + 1 on the tensor-core path (issue 14's edge shapes).
                          Case{{2, 64, 2, 1, 64, 64}, 64}, Case{{1, 65, 2, 1, 64, 128}, 64});
  const auto seed = fresh_seed();
  CAPTURE(describe(c.s), c.C, seed);
  auto in32 = random_inputs<float>(c.s, seed);
  // The bf16 path rounds q, k, v, dout on upload: give the reference the same rounded values, so
  // that what is compared is the kernels' own error (bf16 P and Hin operands, bf16 outputs).
  round_all(in32.q); round_all(in32.k); round_all(in32.v); round_all(in32.dout);
  const OwnedInputs<double> in64{cast<double>(in32.q), cast<double>(in32.k), cast<double>(in32.v),
                                 cast<double>(in32.lam), cast<double>(in32.g), cast<double>(in32.dout)};
  Tensor<double, 4> o_ref(in64.v.shape());
  chunked_forward<double>(in64.view(), {c.C}, o_ref);
  Tensor<float, 4> o_gpu(in32.v.shape());
  cuda::chunked_forward<float>(in32.view(), {c.C}, o_gpu, cuda::Precision::bf16);
  const auto fwd = compare("o bf16 gpu vs cpu double", o_gpu, o_ref);
  INFO(fwd.report());
  CHECK(fwd.max_rel <= 1e-2);
  // Not vacuous: bf16 storage must be visibly less exact than float32 (rounded outputs).
  CHECK(fwd.max_rel > 1e-6);

  const AttentionDims d{c.s.B, c.s.T, c.s.H, c.s.G, c.s.K, c.s.V, in64.lam.dim(3)};
  AttentionGradTensors<double> ref(d);
  chunked_backward<double>(in64.view(), {c.C}, in64.dout, ref.views());
  AttentionGradTensors<float> gpu(d);
  cuda::chunked_backward<float>(in32.view(), {c.C}, in32.dout, gpu.views(), cuda::Precision::bf16);
  for (const auto& cmp : {compare("dq", gpu.dq, ref.dq), compare("dk", gpu.dk, ref.dk),
                          compare("dv", gpu.dv, ref.dv), compare("dg", gpu.dg, ref.dg),
                          compare("dlam", gpu.dlam, ref.dlam)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= 1e-2);
  }
}

TEST_CASE("cuda: the device-pointer API rejects bad sizes, pointers and workspaces before launch",
          "[cuda][errors]") {
  using Catch::Matchers::ContainsSubstring;
  const AttentionDims d{1, 9, 2, 1, 4, 4, num_levels(9)};
  const ChunkedOptions opts{16};
  float dummy[4] = {};
  const cuda::DeviceInputs<float> in{dummy, dummy, dummy, dummy, dummy};
  const size_t need = cuda::chunked_workspace_bytes(d, opts, cuda::Precision::fp32, false);
  CHECK(need > 0);
  CHECK(cuda::chunked_workspace_bytes(d, opts, cuda::Precision::bf16, false) > need);  // + float32 o
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, d, opts, dummy, dummy, need - 1),
                    ContainsSubstring("workspace_bytes: expected >= chunked_workspace_bytes(...) = " +
                                      std::to_string(need)));
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, d, opts, nullptr, dummy, need),
                    ContainsSubstring("o: expected a device pointer, got nullptr"));
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>({dummy, nullptr, dummy, dummy, dummy}, d, opts, dummy,
                                                        dummy, need),
                    ContainsSubstring("in.k: expected a device pointer"));
  AttentionDims few = d;
  few.L = 2;
  CHECK_THROWS_WITH(cuda::chunked_workspace_bytes(few, opts, cuda::Precision::fp32, false),
                    ContainsSubstring("dims.L: expected >= num_levels(t0 + T) = 5, got 2"));
  AttentionDims bad_g = d;
  bad_g.G = 3;
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, bad_g, opts, dummy, dummy, need),
                    ContainsSubstring("dims.G: expected a divisor of H = 2, got 3"));
  AttentionDims empty = d;
  empty.T = 0;
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, empty, opts, dummy, dummy, need),
                    ContainsSubstring("dims.T: expected >= 1, got 0"));
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, d, {128}, dummy, dummy, need),
                    ContainsSubstring("chunk_size: expected a power of two <= 64 on the GPU"));
  // Launch limits: streams index blockIdx.y, head dimensions bound the shared-memory tiles.
  AttentionDims many = d;
  many.B = 4097;
  many.H = 16;
  many.G = 1;
  CHECK_THROWS_WITH(cuda::chunked_workspace_bytes(many, opts, cuda::Precision::fp32, false),
                    ContainsSubstring("B*H: expected <= 65535 streams on the GPU"));
  AttentionDims wide = d;
  wide.K = 1024;
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, wide, opts, dummy, dummy, need),
                    ContainsSubstring("K, V: expected head dimensions <= 512 on the GPU"));
  // Sizes that pass every check but whose workspace would not fit in 64-bit byte counts.
  const AttentionDims huge{1, Index(1) << 30, 65535, 1, 512, 512, num_levels(Index(1) << 30)};
  CHECK_THROWS_WITH(cuda::chunked_workspace_bytes(huge, {1}, cuda::Precision::fp32, true),
                    ContainsSubstring("dims: expected sizes whose workspace fits in 64-bit byte counts"));
  alignas(256) unsigned char buffer[512];
  CHECK_THROWS_WITH(cuda::chunked_forward_device<float>(in, d, opts, dummy, buffer + 4, need),
                    ContainsSubstring("workspace: expected a 256-byte aligned device pointer"));
  // Decoding on device buffers: the same checks as the host overload, before any launch.
  const cuda::DecodeDims dd{1, 2, 1, 4, 4, 3, 3};
  CHECK_THROWS_WITH(cuda::decode_step_device(dd, dummy, -3, dummy, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("tokens: expected >= 0, got -3"));
  CHECK_THROWS_WITH(cuda::decode_step_device(dd, dummy, 9, dummy, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("state: expected [B,H,Lmax,K,V] with Lmax >= num_levels(10) = 5, got Lmax = 3"));
  CHECK_THROWS_WITH(cuda::decode_step_device(dd, dummy, 1, nullptr, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("q_t: expected a device pointer, got nullptr"));
  const cuda::DecodeDims bad_groups{1, 2, 3, 4, 4, 3, 3};
  CHECK_THROWS_WITH(cuda::decode_step_device(bad_groups, dummy, 1, dummy, dummy, dummy, dummy, dummy, dummy),
                    ContainsSubstring("q_t: expected G dividing H = 2, got G = 3"));
  const cuda::DeviceGrads<float> grads{dummy, dummy, nullptr, dummy, dummy};
  const size_t need_b = cuda::chunked_workspace_bytes(d, opts, cuda::Precision::fp32, true);
  CHECK(need_b > need);  // + the summaries' gradient dU
  CHECK_THROWS_WITH(cuda::chunked_backward_device<float>(in, d, opts, dummy, grads, dummy, need_b),
                    ContainsSubstring("grads.dv: expected a device pointer"));
}

TEST_CASE("cuda: the device-pointer API on a stream equals the host-buffer API", "[cuda][gpu]") {
  REQUIRE_GPU();
  const Sizes s{2, 150, 4, 2, 64, 32};
  const Index C = 32;
  const auto in = random_inputs<float>(s, fresh_seed());
  const AttentionDims d{s.B, s.T, s.H, s.G, s.K, s.V, in.lam.dim(3)};
  Tensor<float, 4> o_host(in.v.shape()), o_dev(in.v.shape());
  cuda::chunked_forward<float>(in.view(), {C}, o_host);
  auto upload = [](const auto& t) {
    float* p = nullptr;
    REQUIRE(cudaMalloc(reinterpret_cast<void**>(&p), size_t(t.size()) * sizeof(float)) == cudaSuccess);
    REQUIRE(cudaMemcpy(p, t.data(), size_t(t.size()) * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
    return p;
  };
  float *q = upload(in.q), *k = upload(in.k), *v = upload(in.v), *g = upload(in.g), *lam = upload(in.lam),
        *o = upload(o_dev);
  const size_t bytes = cuda::chunked_workspace_bytes(d, {C}, cuda::Precision::fp32, false);
  void* ws = nullptr;
  REQUIRE(cudaMalloc(&ws, bytes) == cudaSuccess);
  cudaStream_t stream;
  REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
  cuda::chunked_forward_device<float>({q, k, v, g, lam}, d, {C}, o, ws, bytes, stream);
  REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
  REQUIRE(cudaMemcpy(o_dev.data(), o, size_t(o_dev.size()) * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  // Same kernels, same inputs, same order of operations: bit-identical.
  CHECK(compare("o device API vs host API", o_dev, o_host).max_rel == 0.0);
  for (void* p : {static_cast<void*>(q), static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(g),
                  static_cast<void*>(lam), static_cast<void*>(o), ws})
    cudaFree(p);
  cudaStreamDestroy(stream);
}

TEST_CASE("cuda: with weak decay, where every chunk level carries weight, float32 and bf16 match double",
          "[cuda][gpu][levels]") {
  REQUIRE_GPU();
  // random_inputs' default decay averages g ~ -0.69 a token, so a token one chunk of 64 away is
  // down by ~e^-44: the chunk levels' states then carry only the last few tokens before a chunk
  // boundary, and their sums over whole writer chunks and periods (stage 2's summaries, stage 3's
  // accumulation across chunks) add nothing the tolerances could see. g_scale 0.01 gives ~-0.44 a
  // chunk, so tokens thousands of positions back still count. Checked, not assumed: zeroing the
  // chunk levels' weights (levels c+1.. of lam) must move o by more than 10 % (it moves it by
  // about 100 % for these shapes, measured with the CPU form).
  const Case c = GENERATE(Case{{1, 4096, 2, 1, 64, 64}, 64}, Case{{2, 1000, 2, 2, 64, 128}, 64},
                          Case{{1, 2048, 2, 1, 128, 128}, 32}, Case{{1, 1500, 3, 1, 32, 48}, 16});
  const auto precision = GENERATE(cuda::Precision::fp32, cuda::Precision::bf16);
  const bool bf16 = precision == cuda::Precision::bf16;
  const auto seed = fresh_seed();
  CAPTURE(describe(c.s), c.C, bf16, seed, cuda::device_name());
  auto in32 = random_inputs<float>(c.s, seed, 0.01);
  if (bf16) { round_all(in32.q); round_all(in32.k); round_all(in32.v); round_all(in32.dout); }
  const OwnedInputs<double> in64{cast<double>(in32.q), cast<double>(in32.k), cast<double>(in32.v),
                                 cast<double>(in32.lam), cast<double>(in32.g), cast<double>(in32.dout)};
  Tensor<double, 4> o_ref(in64.v.shape()), o_local(in64.v.shape());
  chunked_forward<double>(in64.view(), {c.C}, o_ref);
  OwnedInputs<double> local = in64;
  Index cl = 0;
  while ((Index(1) << cl) < c.C) ++cl;
  for (Index b = 0; b < c.s.B; ++b)
    for (Index t = 0; t < c.s.T; ++t)
      for (Index h = 0; h < c.s.H; ++h)
        for (Index l = cl + 1; l < local.lam.dim(3); ++l) local.lam(b, t, h, l) = 0.0;
  chunked_forward<double>(local.view(), {c.C}, o_local);
  const auto levels_weight = compare("o without the chunk levels", o_local, o_ref);
  INFO(levels_weight.report());
  REQUIRE(levels_weight.max_rel > 0.1);

  // Bounds as the tests above: float32 FFMA 1e-4, bf16 storage 1e-2 (on the rounded inputs).
  const double tol = bf16 ? 1e-2 : 1e-4;
  Tensor<float, 4> o_gpu(in32.v.shape());
  cuda::chunked_forward<float>(in32.view(), {c.C}, o_gpu, precision);
  const auto fwd = compare("o", o_gpu, o_ref);
  INFO(fwd.report());
  CHECK(fwd.max_rel <= tol);
  const AttentionDims d{c.s.B, c.s.T, c.s.H, c.s.G, c.s.K, c.s.V, in64.lam.dim(3)};
  AttentionGradTensors<double> ref(d);
  chunked_backward<double>(in64.view(), {c.C}, in64.dout, ref.views());
  AttentionGradTensors<float> gpu(d);
  cuda::chunked_backward<float>(in32.view(), {c.C}, in32.dout, gpu.views(), precision);
  for (const auto& cmp : {compare("dq", gpu.dq, ref.dq), compare("dk", gpu.dk, ref.dk),
                          compare("dv", gpu.dv, ref.dv), compare("dg", gpu.dg, ref.dg),
                          compare("dlam", gpu.dlam, ref.dlam)}) {
    INFO(cmp.report());
    CHECK(cmp.max_rel <= tol);
  }
}
