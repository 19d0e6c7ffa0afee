// Argument checks of the CUDA entry points (declared and described in checks.cuh): the CPU's
// checks for host tensors, the same rules on bare sizes for device pointers, and the limits of
// the launch configuration. Sibling: reference/loglinear/core/checks.cpp.
#include <loglinear/attention/recurrent.hpp>  // the CPU's state checks: check_initial_state, ...
#include <loglinear/attention/varlen.hpp>     // the CPU's offset checks: check_varlen
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include "checks.cuh"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace loglinear::cuda {

namespace {

std::string str(Index x) { return std::to_string(x); }

void check_gpu_chunk_size(Index C) {
  check_chunk_size(C);
  if (C > kMaxGpuChunk) {
    throw std::invalid_argument("chunk_size: expected a power of two <= 64 on the GPU (shared-memory "
                                "tiles are at most 64 x 64), got " + str(C));
  }
}

// Limits of the launch configuration: the kernels index streams (b, h) by blockIdx.y (at most
// 65535), keep sizes and offsets inside one stream in int, and stage C x K / C x V float tiles in
// shared memory (at most 227 KB per block on sm_90).
constexpr Index kMaxStreams = 65535, kMaxHeadDim = 512, kMaxTokens = Index(1) << 30;
void check_gpu_limits(Index B, Index H, Index K, Index V, Index T, Index L) {
  if (B * H > kMaxStreams) {
    throw std::invalid_argument("B*H: expected <= " + str(kMaxStreams) + " streams on the GPU (grid y "
                                "dimension), got " + str(B * H) + "; split the batch into several calls");
  }
  if (K > kMaxHeadDim || V > kMaxHeadDim) {
    throw std::invalid_argument("K, V: expected head dimensions <= " + str(kMaxHeadDim) +
                                " on the GPU (shared-memory tiles), got K = " + str(K) + ", V = " + str(V));
  }
  if (T > kMaxTokens) throw std::invalid_argument("T: expected <= 2^30 on the GPU, got " + str(T));
  if (L > std::numeric_limits<int>::max()) {
    throw std::invalid_argument("L: expected <= " + str(std::numeric_limits<int>::max()) +
                                " levels on the GPU, got " + str(L));
  }
}

// The kernels' chunk masks shift 64-bit chunk indices by up to the level count: tokens before and in
// the call stay below 2^62 (the CPU's decoder bound), far beyond any sequence a machine holds.
void check_gpu_tokens(Index t0, Index T, const char* name = "initial_state.tokens") {
  if (t0 > (Index(1) << 62) - T) {
    throw std::invalid_argument(std::string(name) + ": expected tokens before the call <= 2^62 - T on the GPU, got " +
                                str(t0) + " with T = " + str(T));
  }
}

// The sizes of a call whose dims and chunk size passed the checks above. The kernels start at a
// chunk boundary of the sequence (chunk z0 = t0 / C), so a call that continues after t0 tokens
// runs with the largest power of two <= C that divides t0: C itself when t0 is a multiple of it
// (a prefill, a context-parallel segment), smaller otherwise (down to 1 for odd t0, where the
// chunked form does the recurrent form's O(T log T K V) work). The results do not depend on C
// beyond float rounding.
ChunkedSizes sizes_of(const AttentionDims& d, Index C) {
  if (d.t0 > 0) C = std::min(C, d.t0 & -d.t0);
  ChunkedSizes s{};
  s.B = int(d.B); s.T = int(d.T); s.H = int(d.H); s.G = int(d.G); s.K = int(d.K); s.V = int(d.V);
  s.L = int(d.L); s.C = int(C);
  s.c = bit_width(std::uint64_t(C)) - 1;
  s.N = int((d.T + C - 1) / C);
  s.t0 = d.t0; s.z0 = d.t0 / C;
  s.L0 = d.t0 == 0 ? 0 : num_levels(d.t0);
  s.Lf = num_levels(d.t0 + d.T);
  // Chunk levels that change inside the call: a reader and a writer of level e differ first at bit e
  // of their absolute chunk index, and all of the call's chunks z0 .. z0 + N - 1 share the bits above
  // the highest bit where z0 and z0 + N - 1 differ. Levels above hold only carried tokens (S0's
  // terms), so the scans skip them: the old num_levels(T) - c - 1 when z0 = 0, and 0 for a call
  // inside one chunk (a decode step), which then runs stage 1 and the state terms only.
  const int changing = bit_width(std::uint64_t(s.z0) ^ std::uint64_t(s.z0 + s.N - 1));
  s.E = std::max(0, std::min(s.Lf - s.c - 1, changing));
  s.varlen = false;
  s.tokens = (long long)(d.B) * d.T;
  return s;
}

// The chunk size, the CPU's input checks (lam with L >= num_levels(t0 + T)) and the GPU limits,
// in that order, on host tensors.
ChunkedSizes check_host_inputs(const AttentionInputs<float>& in, const ChunkedOptions& opts, Index t0) {
  check_gpu_chunk_size(opts.chunk_size);
  const AttentionDims d = check_inputs(in, t0);
  check_gpu_tokens(d.t0, d.T);
  check_gpu_limits(d.B, d.H, d.K, d.V, d.T, d.L);
  return sizes_of(d, opts.chunk_size);
}

// Sizes of the device API: every extent >= 1 and G dividing H (messages "dims.<X>: ...").
void check_dims_sizes(const AttentionDims& d) {
  auto positive = [](const char* name, Index x) {
    if (x < 1) throw std::invalid_argument(std::string("dims.") + name + ": expected >= 1, got " + str(x));
  };
  positive("B", d.B); positive("T", d.T); positive("H", d.H); positive("G", d.G);
  positive("K", d.K); positive("V", d.V);
  if (d.H % d.G != 0) {
    throw std::invalid_argument("dims.G: expected a divisor of H = " + str(d.H) + ", got " + str(d.G));
  }
}

}  // namespace

void require_device() {
  if (!device_available()) {
    throw std::runtime_error("loglinear::cuda: no CUDA device is available (cudaGetDeviceCount); "
                             "use the CPU forms in loglinear::");
  }
}

ChunkedSizes check_chunked_forward(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                                   const Shape<4>& o_shape, const FenwickState<float>* initial,
                                   FenwickState<float>* final) {
  // The CPU forms' order: the state first (it sets t0), then the inputs against t0 + T.
  if (initial != nullptr && initial == final) {
    throw std::invalid_argument("final: expected a FenwickState other than initial (the GPU call shapes the final "
                                "state before it reads the initial one); continue into a new state");
  }
  const Index t0 = check_initial_state(initial, in.v.shape[0], in.v.shape[2], in.q.shape[3], in.v.shape[3]);
  const ChunkedSizes s = check_host_inputs(in, opts, t0);
  check_shape<4>("o", o_shape, {s.B, s.T, s.H, s.V}, " = [B,T,H,V]");
  AttentionDims d{s.B, s.T, s.H, s.G, s.K, s.V, s.L};
  d.t0 = t0;
  prepare_final_state<float>(d, StateIO<float>{initial, final});
  return s;
}

ChunkedSizes check_chunked_backward(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                                    ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads,
                                    const FenwickState<float>* initial, const Tensor<float, 5>* d_final) {
  check_gpu_chunk_size(opts.chunk_size);
  const AttentionDims d = check_backward_arguments<float>(in, dout, grads, StateIO<float>{initial, nullptr}, d_final);
  check_gpu_limits(d.B, d.H, d.K, d.V, d.T, d.L);
  check_gpu_tokens(d.t0, d.T);
  return sizes_of(d, opts.chunk_size);
}

// The device API sees no tensors, only sizes: the same rules as check_inputs on the sizes alone.
ChunkedSizes check_chunked_dims(const AttentionDims& d, const ChunkedOptions& opts) {
  check_gpu_chunk_size(opts.chunk_size);
  check_dims_sizes(d);
  if (d.t0 < 0) throw std::invalid_argument("dims.t0: expected tokens before the call >= 0, got " + str(d.t0));
  check_gpu_tokens(d.t0, d.T, "dims.t0");
  if (d.L < num_levels(d.t0 + d.T)) {
    throw std::invalid_argument("dims.L: expected >= num_levels(t0 + T) = " + str(num_levels(d.t0 + d.T)) +
                                ", got " + str(d.L));
  }
  check_gpu_limits(d.B, d.H, d.K, d.V, d.T, d.L);
  return sizes_of(d, opts.chunk_size);
}

// Packed sequences on device buffers: dims describe the packed arrays (B = 1, T = cu[S]); the
// CPU's offset and shape checks (check_varlen, on the shapes alone: no value is read), then the
// GPU limits for S sequences of the longest length. No carried state (t0 = 0).
ChunkedSizes check_chunked_varlen(const AttentionDims& d, const ChunkedOptions& opts, ConstTensorView<Index, 1> cu) {
  check_gpu_chunk_size(opts.chunk_size);
  check_dims_sizes(d);
  if (d.t0 != 0) {
    throw std::invalid_argument("dims.t0: expected 0 with cu_seqlens (packed sequences carry no state on the GPU; "
                                "continue each sequence with its own stateful call), got " + str(d.t0));
  }
  const AttentionInputs<float> shapes{{nullptr, {d.B, d.T, d.G, d.K}}, {nullptr, {d.B, d.T, d.G, d.K}},
                                      {nullptr, {d.B, d.T, d.H, d.V}}, {nullptr, {d.B, d.T, d.H}},
                                      {nullptr, {d.B, d.T, d.H, d.L}}};
  const Index longest = check_varlen<float>(shapes, cu);
  const Index S = cu.shape[0] - 1;
  check_gpu_limits(S, d.H, d.K, d.V, d.T, d.L);
  ChunkedSizes s = sizes_of(AttentionDims{S, longest, d.H, d.G, d.K, d.V, d.L}, opts.chunk_size);
  s.varlen = true;
  s.tokens = d.T;
  return s;
}

ChunkedSizes check_chunked_varlen_host(const AttentionInputs<float>& in, ConstTensorView<Index, 1> cu,
                                       const ChunkedOptions& opts) {
  check_varlen<float>(in, cu);  // offsets, packed shapes, L for the longest sequence
  // Values: every sequence's slice through the CPU's input checks (finite, g <= 0).
  for (Index i = 0; i + 1 < cu.shape[0]; ++i) {
    const Index begin = cu.data[i], n = cu.data[i + 1] - begin;
    auto rows = [&](auto view) {
      auto part = view;
      part.data += begin * (view.size() / view.shape[1]);
      part.shape[1] = n;
      return part;
    };
    check_inputs<float>({rows(in.q), rows(in.k), rows(in.v), rows(in.g), rows(in.lam)});
  }
  const AttentionDims d{1, in.q.shape[1], in.v.shape[2], in.q.shape[2], in.q.shape[3], in.v.shape[3],
                        in.lam.shape[3]};
  return check_chunked_varlen(d, opts, cu);
}

void check_pointer(const void* ptr, const char* name) {
  if (ptr == nullptr) throw std::invalid_argument(std::string(name) + ": expected a device pointer, got nullptr");
}

template <class In>
void check_pointers(const DeviceInputs<In>& in) {
  check_pointer(in.q, "in.q"); check_pointer(in.k, "in.k"); check_pointer(in.v, "in.v");
  check_pointer(in.g, "in.g"); check_pointer(in.lam, "in.lam");
}

template <class In>
void check_pointers(const DeviceGrads<In>& grads) {
  check_pointer(grads.dq, "grads.dq"); check_pointer(grads.dk, "grads.dk"); check_pointer(grads.dv, "grads.dv");
  check_pointer(grads.dg, "grads.dg"); check_pointer(grads.dlam, "grads.dlam");
}

void check_state_pointers(const ChunkedSizes& s, const DeviceState& state) {
  if (s.t0 > 0 && state.initial == nullptr) {
    throw std::invalid_argument("state.initial: expected a device pointer to the [B,H,num_levels(t0),K,V] "
                                "state when dims.t0 = " + str(s.t0) + " > 0, got nullptr");
  }
  if (s.t0 == 0 && state.initial != nullptr) {
    throw std::invalid_argument("state.initial: expected nullptr when dims.t0 = 0 (no tokens before the call); "
                                "set dims.t0 to the tokens the state holds");
  }
}

void check_workspace(std::size_t need, const void* workspace, std::size_t workspace_bytes) {
  if (workspace_bytes < need) {
    throw std::invalid_argument("workspace_bytes: expected >= chunked_workspace_bytes(...) = " +
                                std::to_string(need) + ", got " + std::to_string(workspace_bytes));
  }
  if (need > 0) check_pointer(workspace, "workspace");
  // WMMA stores the summaries and states straight into the workspace: 32-byte alignment at least
  // (cudaMalloc gives 256); every part inside it starts on a 256-byte boundary of the base.
  const auto misalignment = reinterpret_cast<std::uintptr_t>(workspace) % 256;
  if (misalignment != 0) {
    throw std::invalid_argument("workspace: expected a 256-byte aligned device pointer (as cudaMalloc "
                                "returns), got one " + std::to_string(misalignment) +
                                " bytes past a 256-byte boundary");
  }
}

DecodeParams check_decode_dims(const DecodeDims& d, Index tokens) {
  if (tokens < 0) throw std::invalid_argument("tokens: expected >= 0, got " + str(tokens));
  const int levels = num_levels(tokens + 1);
  if (d.Lmax < levels) {
    throw std::invalid_argument("state: expected [B,H,Lmax,K,V] with Lmax >= num_levels(" + str(tokens + 1) +
                                ") = " + str(levels) + ", got Lmax = " + str(d.Lmax));
  }
  if (d.G < 1 || d.H % d.G != 0) {
    throw std::invalid_argument("q_t: expected G dividing H = " + str(d.H) + ", got G = " + str(d.G));
  }
  if (d.L < levels) {
    throw std::invalid_argument("lam_t: expected [B,H,L] with L >= " + str(levels) + ", got L = " + str(d.L));
  }
  if (d.B < 1 || d.H < 1 || d.K < 1 || d.V < 1) {
    throw std::invalid_argument("state: expected B, H, K, V >= 1, got B = " + str(d.B) + ", H = " + str(d.H) +
                                ", K = " + str(d.K) + ", V = " + str(d.V));
  }
  check_gpu_limits(d.B, d.H, d.K, d.V, 1, std::max(d.L, d.Lmax));
  DecodeParams p{};
  p.B = int(d.B); p.H = int(d.H); p.G = int(d.G); p.K = int(d.K); p.V = int(d.V); p.L = int(d.L);
  p.Lmax = int(d.Lmax); p.t = tokens; p.levels = levels;
  return p;
}

DecodeParams check_decode_step(ConstTensorView<float, 5> state, Index tokens, ConstTensorView<float, 3> q_t,
                               ConstTensorView<float, 3> k_t, ConstTensorView<float, 3> v_t,
                               ConstTensorView<float, 2> g_t, ConstTensorView<float, 3> lam_t,
                               ConstTensorView<float, 3> o_t) {
  const DecodeDims d{state.shape[0], state.shape[1], q_t.shape[1], state.shape[3], state.shape[4],
                     lam_t.shape[2], state.shape[2]};
  const DecodeParams p = check_decode_dims(d, tokens);
  check_shape<3>("q_t", q_t.shape, {d.B, d.G, d.K}, " = [B,G,K]");
  check_shape<3>("k_t", k_t.shape, {d.B, d.G, d.K}, " = [B,G,K]");
  check_shape<3>("v_t", v_t.shape, {d.B, d.H, d.V}, " = [B,H,V]");
  check_shape<2>("g_t", g_t.shape, {d.B, d.H}, " = [B,H]");
  check_shape<3>("o_t", o_t.shape, {d.B, d.H, d.V}, " = [B,H,V]");
  if (lam_t.shape[0] != d.B || lam_t.shape[1] != d.H) {
    throw std::invalid_argument("lam_t: expected [B,H,L] with B = " + str(d.B) + ", H = " + str(d.H) + ", got " +
                                shape_string<3>(lam_t.shape));
  }
  for (Index i = 0; i < g_t.size(); ++i) {
    if (!(g_t.data[i] <= 0)) {  // also false for NaN
      throw std::invalid_argument("g_t: expected finite log-decay values <= 0, got " + std::to_string(g_t.data[i]) +
                                  " at flat index " + str(i));
    }
  }
  return p;
}

template void check_pointers<float>(const DeviceInputs<float>&);
template void check_pointers<__nv_bfloat16>(const DeviceInputs<__nv_bfloat16>&);
template void check_pointers<float>(const DeviceGrads<float>&);
template void check_pointers<__nv_bfloat16>(const DeviceGrads<__nv_bfloat16>&);

}  // namespace loglinear::cuda
