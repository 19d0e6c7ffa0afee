// The attention operator in a model's storage precision (attention.cuh): float32 straight through,
// or bf16 copies of q, k, v, dout around the tensor-core kernels. No SPEC section of its own (the
// operator is SPEC.md §5).
#include "attention.cuh"

#include "../attention/convert.cuh"

#include <cuda_bf16.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

using bf16 = __nv_bfloat16;

// The copies around the tensor-core kernels: the operator's own conversions (attention/convert.cuh).
void to_bf16(Context& ctx, const float* x, std::int64_t n, bf16* y) { convert_to_bf16(x, y, long(n), ctx.stream()); }
void to_float(Context& ctx, const bf16* x, std::int64_t n, float* y) { convert_to_float(x, y, long(n), ctx.stream()); }

constexpr std::size_t kAlign = 256;  // the workspace's alignment; the bf16 arrays keep it too
std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// The scratch of one bf16 call: the operator's workspace, then `count` bf16 arrays of the sizes
// given, each 256-byte aligned. Context::scratch starts at a cudaMalloc address (256-aligned).
struct Bf16Scratch {
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  bf16* arrays[7] = {};
  Bf16Scratch(Context& ctx, std::size_t ws_bytes, std::initializer_list<std::int64_t> sizes) : workspace_bytes(ws_bytes) {
    std::size_t total = aligned(ws_bytes);
    for (std::int64_t n : sizes) total += aligned(std::size_t(n) * sizeof(bf16));
    auto* base = reinterpret_cast<unsigned char*>(ctx.scratch(total / sizeof(float) + 1));
    workspace = base;
    std::size_t at = aligned(ws_bytes);
    int i = 0;
    for (std::int64_t n : sizes) {
      arrays[i++] = reinterpret_cast<bf16*>(base + at);
      at += aligned(std::size_t(n) * sizeof(bf16));
    }
  }
};

}  // namespace

const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw std::invalid_argument("attention: expected fp32 or bf16, got \"" + name + "\"");
}

void attention_forward(Context& ctx, Precision precision, const DeviceInputs<float>& in, const AttentionDims& dims,
                       const ChunkedOptions& opts, float* o) {
  const std::size_t ws_bytes = chunked_workspace_bytes(dims, opts, precision, false);
  if (precision == Precision::fp32) {
    void* ws = ctx.scratch(ws_bytes / sizeof(float) + 1);
    chunked_forward_device<float>(in, dims, opts, o, ws, ws_bytes, ctx.stream());
    return;
  }
  const std::int64_t nqk = dims.B * dims.T * dims.G * dims.K, nv = dims.B * dims.T * dims.H * dims.V;
  Bf16Scratch s(ctx, ws_bytes, {nqk, nqk, nv, nv});
  bf16 *q = s.arrays[0], *k = s.arrays[1], *v = s.arrays[2], *o16 = s.arrays[3];
  to_bf16(ctx, in.q, nqk, q);
  to_bf16(ctx, in.k, nqk, k);
  to_bf16(ctx, in.v, nv, v);
  chunked_forward_device<bf16>({q, k, v, in.g, in.lam}, dims, opts, o16, s.workspace, s.workspace_bytes, ctx.stream());
  to_float(ctx, o16, nv, o);
}

void attention_backward(Context& ctx, Precision precision, const DeviceInputs<float>& in, const AttentionDims& dims,
                        const ChunkedOptions& opts, const float* dout, const DeviceGrads<float>& grads) {
  const std::size_t ws_bytes = chunked_workspace_bytes(dims, opts, precision, true);
  if (precision == Precision::fp32) {
    void* ws = ctx.scratch(ws_bytes / sizeof(float) + 1);
    chunked_backward_device<float>(in, dims, opts, dout, grads, ws, ws_bytes, ctx.stream());
    return;
  }
  const std::int64_t nqk = dims.B * dims.T * dims.G * dims.K, nv = dims.B * dims.T * dims.H * dims.V;
  Bf16Scratch s(ctx, ws_bytes, {nqk, nqk, nv, nv, nqk, nqk, nv});
  bf16 *q = s.arrays[0], *k = s.arrays[1], *v = s.arrays[2], *do16 = s.arrays[3], *dq = s.arrays[4],
       *dk = s.arrays[5], *dv = s.arrays[6];
  // The forward's bf16 copies are not kept (they would cost a model's worth of activations in
  // bf16): rounding again gives the same bits.
  to_bf16(ctx, in.q, nqk, q);
  to_bf16(ctx, in.k, nqk, k);
  to_bf16(ctx, in.v, nv, v);
  to_bf16(ctx, dout, nv, do16);
  chunked_backward_device<bf16>({q, k, v, in.g, in.lam}, dims, opts, do16, {dq, dk, dv, grads.dg, grads.dlam},
                                s.workspace, s.workspace_bytes, ctx.stream());
  to_float(ctx, dq, nqk, grads.dq);
  to_float(ctx, dk, nqk, grads.dk);
  to_float(ctx, dv, nv, grads.dv);
}

}  // namespace loglinear::cuda::nn
