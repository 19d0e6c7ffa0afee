// Host API of the CUDA backend: validates on the host (the reference's own checks), fills one
// ChunkedParams, moves host buffers to the device and back. Every CUDA call is checked.
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include "decode.cuh"
#include "params.cuh"

#include <vector>

namespace loglinear::cuda {

namespace {

// A device buffer of floats, freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(float)));
  }
  DeviceBuffer(const float* host, size_t n) : DeviceBuffer(n) {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMemcpy(ptr_, host, n_ * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* get() const { return ptr_; }
  void zero() { if (n_) LOGLINEAR_CUDA_CHECK(cudaMemset(ptr_, 0, n_ * sizeof(float))); }
  void to_host(float* host) const {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMemcpy(host, ptr_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
  }

 private:
  float* ptr_ = nullptr;
  size_t n_;
};

void require_device() {
  if (!device_available()) {
    throw std::runtime_error("loglinear::cuda: no CUDA device is available (cudaGetDeviceCount); "
                             "use the CPU forms in loglinear::");
  }
}

AttentionDims validate(const AttentionInputs<float>& in, Index C) {
  check_chunk_size(C);
  if (C > 64) {
    throw std::invalid_argument("chunk_size: expected a power of two <= 64 on the GPU (shared-memory "
                                "tiles are at most 64 x 64), got " + std::to_string(C));
  }
  return check_inputs(in);
}

// Sizes of a call; pointers are filled by the caller.
ChunkedParams params_of(const AttentionDims& d, Index C) {
  ChunkedParams p{};
  p.B = int(d.B); p.T = int(d.T); p.H = int(d.H); p.G = int(d.G); p.K = int(d.K); p.V = int(d.V);
  p.L = int(d.L); p.C = int(C);
  p.c = bit_width(std::uint64_t(C)) - 1;
  p.N = int((d.T + C - 1) / C);
  p.E = std::max(0, num_levels(d.T) - p.c - 1);
  return p;
}

}  // namespace

template <>
void chunked_forward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                            TensorView<float, 4> o) {
  const AttentionDims d = validate(in, opts.chunk_size);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  require_device();
  ChunkedParams p = params_of(d, opts.chunk_size);
  DeviceBuffer q(in.q.data, in.q.size()), k(in.k.data, in.k.size()), v(in.v.data, in.v.size()),
      g(in.g.data, in.g.size()), lam(in.lam.data, in.lam.size()), out(o.size()),
      gamma(size_t(d.B * d.H * d.T)), U(size_t(d.B * d.H) * p.N * d.K * d.V),
      Hin(size_t(p.E) * d.B * d.H * p.N * d.K * d.V);
  p.q = q.get(); p.k = k.get(); p.v = v.get(); p.g = g.get(); p.lam = lam.get();
  p.o = out.get(); p.gamma = gamma.get(); p.U = U.get(); p.Hin = Hin.get();
  launch_chunked_forward(p, nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  out.to_host(o.data);
}

template <>
void chunked_backward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                             ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads) {
  const AttentionDims d = validate(in, opts.chunk_size);
  check_shape<4>("dout", dout.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  check_finite<float, 4>("dout", dout);
  check_grads(grads, d);
  require_device();
  ChunkedParams p = params_of(d, opts.chunk_size);
  DeviceBuffer q(in.q.data, in.q.size()), k(in.k.data, in.k.size()), v(in.v.data, in.v.size()),
      g(in.g.data, in.g.size()), lam(in.lam.data, in.lam.size()), dO(dout.data, dout.size()),
      gamma(size_t(d.B * d.H * d.T)), U(size_t(d.B * d.H) * p.N * d.K * d.V),
      Hin(size_t(p.E) * d.B * d.H * p.N * d.K * d.V), dU(size_t(d.B * d.H) * p.N * d.K * d.V),
      dq(grads.dq.size()), dk(grads.dk.size()), dv(grads.dv.size()), dg(grads.dg.size()),
      dlam(grads.dlam.size());
  for (auto* b : {&dq, &dk, &dv, &dg, &dlam, &dU}) b->zero();
  p.q = q.get(); p.k = k.get(); p.v = v.get(); p.g = g.get(); p.lam = lam.get(); p.dout = dO.get();
  p.gamma = gamma.get(); p.U = U.get(); p.Hin = Hin.get(); p.dU = dU.get();
  p.dq = dq.get(); p.dk = dk.get(); p.dv = dv.get(); p.dg = dg.get(); p.dlam = dlam.get();
  launch_chunked_backward(p, nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  dq.to_host(grads.dq.data); dk.to_host(grads.dk.data); dv.to_host(grads.dv.data);
  dg.to_host(grads.dg.data); dlam.to_host(grads.dlam.data);
}

template <>
void decode_step<float>(TensorView<float, 5> state, Index tokens, ConstTensorView<float, 3> q_t,
                        ConstTensorView<float, 3> k_t, ConstTensorView<float, 3> v_t,
                        ConstTensorView<float, 2> g_t, ConstTensorView<float, 3> lam_t,
                        TensorView<float, 3> o_t) {
  const Index B = state.shape[0], H = state.shape[1], Lmax = state.shape[2], K = state.shape[3],
              V = state.shape[4], G = q_t.shape[1];
  const int levels = num_levels(tokens + 1);
  if (tokens < 0) throw std::invalid_argument("tokens: expected >= 0, got " + std::to_string(tokens));
  if (Lmax < levels) {
    throw std::invalid_argument("state: expected [B,H,Lmax,K,V] with Lmax >= num_levels(" +
                                std::to_string(tokens + 1) + ") = " + std::to_string(levels) +
                                ", got Lmax = " + std::to_string(Lmax));
  }
  if (G < 1 || H % G != 0) throw std::invalid_argument("q_t: expected G dividing H = " + std::to_string(H));
  check_shape<3>("q_t", q_t.shape, {B, G, K}, " = [B,G,K]");
  check_shape<3>("k_t", k_t.shape, {B, G, K}, " = [B,G,K]");
  check_shape<3>("v_t", v_t.shape, {B, H, V}, " = [B,H,V]");
  check_shape<2>("g_t", g_t.shape, {B, H}, " = [B,H]");
  check_shape<3>("o_t", o_t.shape, {B, H, V}, " = [B,H,V]");
  if (lam_t.shape[0] != B || lam_t.shape[1] != H || lam_t.shape[2] < levels) {
    throw std::invalid_argument("lam_t: expected [B,H,L] with L >= " + std::to_string(levels));
  }
  for (Index i = 0; i < g_t.size(); ++i)
    if (!(g_t.data[i] <= 0)) throw std::invalid_argument("g_t: expected finite log-decay values <= 0");
  require_device();
  DeviceBuffer S(state.data, state.size()), q(q_t.data, q_t.size()), k(k_t.data, k_t.size()),
      v(v_t.data, v_t.size()), g(g_t.data, g_t.size()), lam(lam_t.data, lam_t.size()), o(o_t.size());
  DecodeParams p{int(B), int(H), int(G), int(K), int(V), int(lam_t.shape[2]), int(Lmax), tokens, levels,
                 S.get(), q.get(), k.get(), v.get(), g.get(), lam.get(), o.get()};
  launch_decode_step(p, nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  S.to_host(state.data);
  o.to_host(o_t.data);
}

}  // namespace loglinear::cuda
