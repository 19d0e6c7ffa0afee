// Host API of the CUDA backend: validates on the host (the reference's own checks), fills one
// ChunkedParams, moves host buffers to the device and back. Every CUDA call is checked.
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include "decode.cuh"
#include "params.cuh"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace loglinear::cuda {

namespace {

using bf16 = __nv_bfloat16;

// A device buffer of n elements of T, freed on scope exit.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  DeviceBuffer(const T* host, size_t n) : DeviceBuffer(n) {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMemcpy(ptr_, host, n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  void zero() { if (n_) LOGLINEAR_CUDA_CHECK(cudaMemset(ptr_, 0, n_ * sizeof(T))); }
  void to_host(T* host) const {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMemcpy(host, ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* ptr_ = nullptr;
  size_t n_;
};

void require_device() {
  if (!device_available()) {
    throw std::runtime_error("loglinear::cuda: no CUDA device is available (cudaGetDeviceCount); "
                             "use the CPU forms in loglinear::");
  }
}

void check_gpu_chunk_size(Index C) {
  check_chunk_size(C);
  if (C > 64) {
    throw std::invalid_argument("chunk_size: expected a power of two <= 64 on the GPU (shared-memory "
                                "tiles are at most 64 x 64), got " + std::to_string(C));
  }
}

// Limits of the launch configuration, checked before anything is queued: the kernels index
// streams (b, h) by blockIdx.y (at most 65535), use int offsets inside one stream, and stage
// C x K / C x V float tiles in shared memory (at most 227 KB per block on sm_90).
constexpr Index kMaxStreams = 65535, kMaxHeadDim = 512;
void check_gpu_limits(Index B, Index H, Index K, Index V, Index T) {
  if (B * H > kMaxStreams) {
    throw std::invalid_argument("B*H: expected <= " + std::to_string(kMaxStreams) +
                                " streams on the GPU (grid y dimension), got " + std::to_string(B * H) +
                                "; split the batch into several calls");
  }
  if (K > kMaxHeadDim || V > kMaxHeadDim) {
    throw std::invalid_argument("K, V: expected head dimensions <= " + std::to_string(kMaxHeadDim) +
                                " on the GPU (shared-memory tiles), got K = " + std::to_string(K) +
                                ", V = " + std::to_string(V));
  }
  if (T > (Index(1) << 30)) throw std::invalid_argument("T: expected <= 2^30 on the GPU, got " + std::to_string(T));
}

AttentionDims validate(const AttentionInputs<float>& in, Index C) {
  check_gpu_chunk_size(C);
  const AttentionDims d = check_inputs(in);
  check_gpu_limits(d.B, d.H, d.K, d.V, d.T);
  return d;
}

// The device API sees no tensors, only sizes: the same rules as check_inputs on the sizes alone.
void check_dims(const AttentionDims& d, Index C) {
  check_gpu_chunk_size(C);
  auto positive = [](const char* name, Index x) {
    if (x < 1) throw std::invalid_argument(std::string("dims.") + name + ": expected >= 1, got " + std::to_string(x));
  };
  positive("B", d.B); positive("T", d.T); positive("H", d.H); positive("G", d.G);
  positive("K", d.K); positive("V", d.V);
  if (d.H % d.G != 0) {
    throw std::invalid_argument("dims.G: expected a divisor of H = " + std::to_string(d.H) + ", got " +
                                std::to_string(d.G));
  }
  if (d.L < num_levels(d.T)) {
    throw std::invalid_argument("dims.L: expected >= num_levels(T) = " + std::to_string(num_levels(d.T)) +
                                ", got " + std::to_string(d.L));
  }
  check_gpu_limits(d.B, d.H, d.K, d.V, d.T);
}

void check_pointer(const void* ptr, const char* name) {
  if (ptr == nullptr) throw std::invalid_argument(std::string(name) + ": expected a device pointer, got nullptr");
}

template <class In>
void check_pointers(const DeviceInputs<In>& in) {
  check_pointer(in.q, "in.q"); check_pointer(in.k, "in.k"); check_pointer(in.v, "in.v");
  check_pointer(in.g, "in.g"); check_pointer(in.lam, "in.lam");
}

// Sizes of a call; pointers are filled by the caller.
template <class In>
ChunkedParams<In> params_of(const AttentionDims& d, Index C) {
  ChunkedParams<In> p{};
  p.B = int(d.B); p.T = int(d.T); p.H = int(d.H); p.G = int(d.G); p.K = int(d.K); p.V = int(d.V);
  p.L = int(d.L); p.C = int(C);
  p.c = bit_width(std::uint64_t(C)) - 1;
  p.N = int((d.T + C - 1) / C);
  p.E = std::max(0, num_levels(d.T) - p.c - 1);
  return p;
}

// Offsets (in floats) of the workspace's parts; each part starts on a 256-byte boundary.
struct Workspace {
  size_t gamma = 0, U = 0, Hin = 0, dU = 0, o32 = 0, dq32 = 0, dk32 = 0, dv32 = 0, total = 0;
  Workspace(const AttentionDims& d, Index C, Precision precision, bool backward) {
    const auto p = params_of<float>(d, C);
    const size_t kv = size_t(d.B * d.H) * p.N * d.K * d.V, nq = size_t(d.B * d.T * d.G * d.K),
                 nv = size_t(d.B * d.T * d.H * d.V);
    auto take = [this](size_t n) { const size_t at = total; total += (n + 63) / 64 * 64; return at; };
    gamma = take(size_t(d.B * d.H * d.T));
    U = take(kv);
    Hin = take(size_t(p.E) * kv);
    if (backward) dU = take(kv);
    if (precision == Precision::bf16) {
      if (!backward) o32 = take(nv);
      if (backward) { dq32 = take(nq); dk32 = take(nq); dv32 = take(nv); }
    }
  }
};

template <class In> constexpr Precision precision_of() {
  return std::is_same_v<In, bf16> ? Precision::bf16 : Precision::fp32;
}

__global__ void to_bf16_kernel(const float* in, bf16* out, long n) {
  for (long i = blockIdx.x * long(blockDim.x) + threadIdx.x; i < n; i += long(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}
void to_bf16(const float* in, bf16* out, long n, cudaStream_t s) {
  if (n == 0) return;
  const int blocks = int(std::min<long>((n + 255) / 256, 4096));
  to_bf16_kernel<<<blocks, 256, 0, s>>>(in, out, n);
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

void check_workspace(const AttentionDims& d, const ChunkedOptions& opts, Precision precision, bool backward,
                     void* workspace, size_t workspace_bytes) {
  const size_t need = chunked_workspace_bytes(d, opts, precision, backward);
  if (workspace_bytes < need) {
    throw std::invalid_argument("workspace_bytes: expected >= chunked_workspace_bytes(...) = " +
                                std::to_string(need) + ", got " + std::to_string(workspace_bytes));
  }
  if (need > 0) check_pointer(workspace, "workspace");
  // WMMA stores the summaries and states straight into the workspace: 32-byte alignment at least
  // (cudaMalloc gives 256); every part inside it starts on a 256-byte boundary of the base.
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) {
    throw std::invalid_argument("workspace: expected a 256-byte aligned device pointer (as cudaMalloc returns)");
  }
}

std::vector<bf16> rounded_bf16(const float* x, Index n) {
  std::vector<bf16> out(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) out[size_t(i)] = __float2bfloat16(x[i]);
  return out;
}
void from_bf16(const std::vector<bf16>& x, float* out) {
  for (size_t i = 0; i < x.size(); ++i) out[i] = __bfloat162float(x[i]);
}

// Host overloads: upload (as In), run the device API with a workspace of its own, download.
template <class In>
void forward_from_host(const AttentionInputs<float>& in, const AttentionDims& d, const ChunkedOptions& opts,
                       float* o_host) {
  std::vector<In> q, k, v;  // bf16 copies (unused for float)
  const In *qh, *kh, *vh;
  if constexpr (std::is_same_v<In, bf16>) {
    q = rounded_bf16(in.q.data, in.q.size()); k = rounded_bf16(in.k.data, in.k.size());
    v = rounded_bf16(in.v.data, in.v.size());
    qh = q.data(); kh = k.data(); vh = v.data();
  } else {
    qh = in.q.data; kh = in.k.data; vh = in.v.data;
  }
  DeviceBuffer<In> dq_(qh, size_t(in.q.size())), dk_(kh, size_t(in.k.size())), dv_(vh, size_t(in.v.size())),
      out(size_t(d.B * d.T * d.H * d.V));
  DeviceBuffer<float> g(in.g.data, size_t(in.g.size())), lam(in.lam.data, size_t(in.lam.size()));
  const size_t ws_bytes = chunked_workspace_bytes(d, opts, precision_of<In>(), false);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  chunked_forward_device<In>({dq_.get(), dk_.get(), dv_.get(), g.get(), lam.get()}, d, opts, out.get(), ws.get(),
                             ws_bytes, nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  if constexpr (std::is_same_v<In, bf16>) {
    std::vector<bf16> o(size_t(d.B * d.T * d.H * d.V));
    out.to_host(o.data());
    from_bf16(o, o_host);
  } else {
    out.to_host(o_host);
  }
}

template <class In>
void backward_from_host(const AttentionInputs<float>& in, const AttentionDims& d, const ChunkedOptions& opts,
                        const float* dout_host, const AttentionGrads<float>& grads) {
  const size_t nq = size_t(in.q.size()), nv = size_t(in.v.size());
  std::vector<In> q, k, v, dout;
  const In *qh, *kh, *vh, *doh;
  if constexpr (std::is_same_v<In, bf16>) {
    q = rounded_bf16(in.q.data, in.q.size()); k = rounded_bf16(in.k.data, in.k.size());
    v = rounded_bf16(in.v.data, in.v.size()); dout = rounded_bf16(dout_host, Index(nv));
    qh = q.data(); kh = k.data(); vh = v.data(); doh = dout.data();
  } else {
    qh = in.q.data; kh = in.k.data; vh = in.v.data; doh = dout_host;
  }
  DeviceBuffer<In> q_(qh, nq), k_(kh, nq), v_(vh, nv), dO(doh, nv), dq(nq), dk(nq), dv(nv);
  DeviceBuffer<float> g(in.g.data, size_t(in.g.size())), lam(in.lam.data, size_t(in.lam.size())),
      dg(size_t(grads.dg.size())), dlam(size_t(grads.dlam.size()));
  const size_t ws_bytes = chunked_workspace_bytes(d, opts, precision_of<In>(), true);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  chunked_backward_device<In>({q_.get(), k_.get(), v_.get(), g.get(), lam.get()}, d, opts, dO.get(),
                              {dq.get(), dk.get(), dv.get(), dg.get(), dlam.get()}, ws.get(), ws_bytes, nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  if constexpr (std::is_same_v<In, bf16>) {
    std::vector<bf16> tmp(nq);
    dq.to_host(tmp.data()); from_bf16(tmp, grads.dq.data);
    dk.to_host(tmp.data()); from_bf16(tmp, grads.dk.data);
    tmp.resize(nv);
    dv.to_host(tmp.data()); from_bf16(tmp, grads.dv.data);
  } else {
    dq.to_host(grads.dq.data); dk.to_host(grads.dk.data); dv.to_host(grads.dv.data);
  }
  dg.to_host(grads.dg.data); dlam.to_host(grads.dlam.data);
}

}  // namespace

std::size_t chunked_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts, Precision precision,
                                    bool backward) {
  check_dims(d, opts.chunk_size);
  return Workspace(d, opts.chunk_size, precision, backward).total * sizeof(float);
}

template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  check_dims(d, opts.chunk_size);
  check_pointers(in); check_pointer(o, "o");
  constexpr Precision prec = precision_of<In>();
  check_workspace(d, opts, prec, false, workspace, workspace_bytes);
  require_device();
  const Workspace w(d, opts.chunk_size, prec, false);
  float* ws = static_cast<float*>(workspace);
  ChunkedParams<In> p = params_of<In>(d, opts.chunk_size);
  p.q = in.q; p.k = in.k; p.v = in.v; p.g = in.g; p.lam = in.lam;
  p.gamma = ws + w.gamma; p.U = ws + w.U; p.Hin = ws + w.Hin;
  if constexpr (prec == Precision::bf16) p.o = ws + w.o32; else p.o = o;
  launch_chunked_forward(p, stream);
  if constexpr (prec == Precision::bf16) to_bf16(p.o, o, long(d.B * d.T * d.H * d.V), stream);
}

template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream) {
  check_dims(d, opts.chunk_size);
  check_pointers(in); check_pointer(dout, "dout");
  check_pointer(grads.dq, "grads.dq"); check_pointer(grads.dk, "grads.dk"); check_pointer(grads.dv, "grads.dv");
  check_pointer(grads.dg, "grads.dg"); check_pointer(grads.dlam, "grads.dlam");
  constexpr Precision prec = precision_of<In>();
  check_workspace(d, opts, prec, true, workspace, workspace_bytes);
  require_device();
  const Workspace w(d, opts.chunk_size, prec, true);
  float* ws = static_cast<float*>(workspace);
  ChunkedParams<In> p = params_of<In>(d, opts.chunk_size);
  p.q = in.q; p.k = in.k; p.v = in.v; p.g = in.g; p.lam = in.lam; p.dout = dout;
  p.gamma = ws + w.gamma; p.U = ws + w.U; p.Hin = ws + w.Hin; p.dU = ws + w.dU;
  if constexpr (prec == Precision::bf16) {
    p.dq = ws + w.dq32; p.dk = ws + w.dk32; p.dv = ws + w.dv32;
  } else {
    p.dq = grads.dq; p.dk = grads.dk; p.dv = grads.dv;
  }
  p.dg = grads.dg; p.dlam = grads.dlam;
  const size_t nq = size_t(d.B * d.T * d.G * d.K), nv = size_t(d.B * d.T * d.H * d.V);
  // Every kernel adds into dq, dk, dv, dlam and dU (dg is written whole).
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dq, 0, nq * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dk, 0, nq * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dv, 0, nv * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dlam, 0, size_t(d.B * d.T * d.H * d.L) * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dU, 0, size_t(d.B * d.H) * p.N * d.K * d.V * sizeof(float), stream));
  launch_chunked_backward(p, stream);
  if constexpr (prec == Precision::bf16) {
    to_bf16(p.dq, grads.dq, long(nq), stream);
    to_bf16(p.dk, grads.dk, long(nq), stream);
    to_bf16(p.dv, grads.dv, long(nv), stream);
  }
}

template void chunked_forward_device<float>(const DeviceInputs<float>&, const AttentionDims&, const ChunkedOptions&,
                                            float*, void*, std::size_t, cudaStream_t);
template void chunked_forward_device<bf16>(const DeviceInputs<bf16>&, const AttentionDims&, const ChunkedOptions&,
                                           bf16*, void*, std::size_t, cudaStream_t);
template void chunked_backward_device<float>(const DeviceInputs<float>&, const AttentionDims&,
                                             const ChunkedOptions&, const float*, const DeviceGrads<float>&, void*,
                                             std::size_t, cudaStream_t);
template void chunked_backward_device<bf16>(const DeviceInputs<bf16>&, const AttentionDims&, const ChunkedOptions&,
                                            const bf16*, const DeviceGrads<bf16>&, void*, std::size_t,
                                            cudaStream_t);

template <>
void chunked_forward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts, TensorView<float, 4> o,
                            Precision precision) {
  const AttentionDims d = validate(in, opts.chunk_size);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  require_device();
  if (precision == Precision::bf16) forward_from_host<bf16>(in, d, opts, o.data);
  else forward_from_host<float>(in, d, opts, o.data);
}

template <>
void chunked_backward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                             ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads,
                             Precision precision) {
  const AttentionDims d = validate(in, opts.chunk_size);
  check_shape<4>("dout", dout.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_finite<float, 4>("dout", dout);
  check_grads(grads, d);
  require_device();
  if (precision == Precision::bf16) backward_from_host<bf16>(in, d, opts, dout.data, grads);
  else backward_from_host<float>(in, d, opts, dout.data, grads);
}

namespace {
// The checks of both decode_step overloads, on sizes alone; returns num_levels(tokens + 1).
int check_decode(Index B, Index H, Index G, Index K, Index V, Index L, Index Lmax, Index tokens) {
  if (tokens < 0) throw std::invalid_argument("tokens: expected >= 0, got " + std::to_string(tokens));
  const int levels = num_levels(tokens + 1);
  if (Lmax < levels) {
    throw std::invalid_argument("state: expected [B,H,Lmax,K,V] with Lmax >= num_levels(" +
                                std::to_string(tokens + 1) + ") = " + std::to_string(levels) +
                                ", got Lmax = " + std::to_string(Lmax));
  }
  if (G < 1 || H % G != 0) throw std::invalid_argument("q_t: expected G dividing H = " + std::to_string(H));
  if (L < levels) throw std::invalid_argument("lam_t: expected [B,H,L] with L >= " + std::to_string(levels));
  if (B < 1 || H < 1 || K < 1 || V < 1) {
    throw std::invalid_argument("state: expected B, H, K, V >= 1, got B = " + std::to_string(B) + ", H = " +
                                std::to_string(H) + ", K = " + std::to_string(K) + ", V = " + std::to_string(V));
  }
  check_gpu_limits(B, H, K, V, 1);
  return levels;
}
}  // namespace

void decode_step_device(const DecodeDims& d, float* state, Index tokens, const float* q_t, const float* k_t,
                        const float* v_t, const float* g_t, const float* lam_t, float* o_t, cudaStream_t stream) {
  const int levels = check_decode(d.B, d.H, d.G, d.K, d.V, d.L, d.Lmax, tokens);
  check_pointer(state, "state"); check_pointer(q_t, "q_t"); check_pointer(k_t, "k_t");
  check_pointer(v_t, "v_t"); check_pointer(g_t, "g_t"); check_pointer(lam_t, "lam_t"); check_pointer(o_t, "o_t");
  require_device();
  DecodeParams p{int(d.B), int(d.H), int(d.G), int(d.K), int(d.V), int(d.L), int(d.Lmax), tokens, levels,
                 state, q_t, k_t, v_t, g_t, lam_t, o_t};
  launch_decode_step(p, stream);
}

template <>
void decode_step<float>(TensorView<float, 5> state, Index tokens, ConstTensorView<float, 3> q_t,
                        ConstTensorView<float, 3> k_t, ConstTensorView<float, 3> v_t,
                        ConstTensorView<float, 2> g_t, ConstTensorView<float, 3> lam_t,
                        TensorView<float, 3> o_t) {
  const DecodeDims d{state.shape[0], state.shape[1], q_t.shape[1], state.shape[3], state.shape[4],
                     lam_t.shape[2], state.shape[2]};
  check_decode(d.B, d.H, d.G, d.K, d.V, d.L, d.Lmax, tokens);
  check_shape<3>("q_t", q_t.shape, {d.B, d.G, d.K}, " = [B,G,K]");
  check_shape<3>("k_t", k_t.shape, {d.B, d.G, d.K}, " = [B,G,K]");
  check_shape<3>("v_t", v_t.shape, {d.B, d.H, d.V}, " = [B,H,V]");
  check_shape<2>("g_t", g_t.shape, {d.B, d.H}, " = [B,H]");
  check_shape<3>("o_t", o_t.shape, {d.B, d.H, d.V}, " = [B,H,V]");
  if (lam_t.shape[0] != d.B || lam_t.shape[1] != d.H) {
    throw std::invalid_argument("lam_t: expected [B,H,L] with B = " + std::to_string(d.B) + ", H = " +
                                std::to_string(d.H));
  }
  for (Index i = 0; i < g_t.size(); ++i)
    if (!(g_t.data[i] <= 0)) throw std::invalid_argument("g_t: expected finite log-decay values <= 0");
  require_device();
  DeviceBuffer<float> S(state.data, size_t(state.size())), q(q_t.data, size_t(q_t.size())),
      k(k_t.data, size_t(k_t.size())), v(v_t.data, size_t(v_t.size())), g(g_t.data, size_t(g_t.size())),
      lam(lam_t.data, size_t(lam_t.size())), o(size_t(o_t.size()));
  decode_step_device(d, S.get(), tokens, q.get(), k.get(), v.get(), g.get(), lam.get(), o.get(), nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  S.to_host(state.data);
  o.to_host(o_t.data);
}

}  // namespace loglinear::cuda
