// The public chunked entry points of loglinear/cuda/chunked.hpp: each validates once
// (checks.cuh), builds the workspace layout once (workspace.cuh) and queues the stages
// (chunked_launch.cu). The host-buffer overloads upload, run the device path without checking
// again, and download. Cost: the kernels' O(T C (K+V) + T log(T/C) K V) per head plus the copies.
// Sibling: reference/loglinear/attention/chunked.cpp, the CPU form with the same names.
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>

#include "buffers.cuh"
#include "checks.cuh"
#include "launch.cuh"
#include "workspace.cuh"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

namespace loglinear::cuda {

namespace {

using bf16 = __nv_bfloat16;

template <class In>
constexpr Precision precision_of() {
  return std::is_same_v<In, bf16> ? Precision::bf16 : Precision::fp32;
}

// Packed sequences: the kernels read the offsets from the caller's device copy when there is one
// (`cu_device`, e.g. the cu_seqlens tensor a PyTorch caller holds), otherwise from the workspace,
// where the host offsets are copied in stream order. That copy is from pageable memory, which CUDA
// may make wait for the stream's earlier work: a caller that queues many calls passes cu_device.
void place_offsets(const ChunkedSizes& s, const long long*& at, const Index* cu_host, const Index* cu_device,
                   cudaStream_t stream) {
  if (!s.varlen) return;
  static_assert(sizeof(Index) == sizeof(long long), "cu_seqlens are int64 on both sides");
  if (cu_device != nullptr) {
    at = reinterpret_cast<const long long*>(cu_device);
    return;
  }
  LOGLINEAR_CUDA_CHECK(cudaMemcpyAsync(const_cast<long long*>(at), cu_host, (std::size_t(s.B) + 1) * sizeof(long long),
                                       cudaMemcpyHostToDevice, stream));
}

// A checked forward, queued on `stream`. For bf16 storage the kernels write o in float32 into
// the workspace and one conversion writes the caller's o. `cu`: the offsets of packed sequences.
template <class In>
void run_forward(const ChunkedSizes& s, const WorkspaceLayout& w, void* workspace, const DeviceInputs<In>& in,
                 In* o, cudaStream_t stream, const DeviceState& state, const Index* cu = nullptr,
                 const Index* cu_device = nullptr) {
  ChunkedParams<In> p = w.params<In>(s, workspace);
  p.q = in.q; p.k = in.k; p.v = in.v; p.g = in.g; p.lam = in.lam;
  p.S0 = state.initial; p.S_final = state.final;
  if constexpr (std::is_same_v<In, float>) p.o = o;
  place_offsets(s, p.cu, cu, cu_device, stream);
  launch_chunked_forward(p, stream);
  if constexpr (std::is_same_v<In, bf16>) convert_to_bf16(p.o, o, long(s.tokens) * s.H * s.V, stream);
}

// A checked backward, queued on `stream`; dq, dk, dv accumulate in float32 as in run_forward.
template <class In>
void run_backward(const ChunkedSizes& s, const WorkspaceLayout& w, void* workspace, const DeviceInputs<In>& in,
                  const In* dout, const DeviceGrads<In>& grads, cudaStream_t stream, const DeviceState& state,
                  const DeviceStateGrads& state_grads, const Index* cu = nullptr,
                  const Index* cu_device = nullptr) {
  ChunkedParams<In> p = w.params<In>(s, workspace);
  p.q = in.q; p.k = in.k; p.v = in.v; p.g = in.g; p.lam = in.lam; p.dout = dout;
  p.S0 = state.initial; p.dS_final = state_grads.d_final; p.dS0 = state_grads.d_initial;
  if constexpr (std::is_same_v<In, float>) { p.dq = grads.dq; p.dk = grads.dk; p.dv = grads.dv; }
  p.dg = grads.dg; p.dlam = grads.dlam;
  const size_t nq = size_t(s.tokens) * s.G * s.K, nv = size_t(s.tokens) * s.H * s.V,
               nkv = size_t(s.B) * s.H * s.N * s.K * s.V;
  // Every kernel adds into dq, dk, dv, dlam and dU (dg is written whole).
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dq, 0, nq * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dk, 0, nq * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dv, 0, nv * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dlam, 0, size_t(s.tokens) * s.H * s.L * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dU, 0, nkv * sizeof(float), stream));
  place_offsets(s, p.cu, cu, cu_device, stream);
  launch_chunked_backward(p, stream);
  if constexpr (std::is_same_v<In, bf16>) {
    convert_to_bf16(p.dq, grads.dq, long(nq), stream);
    convert_to_bf16(p.dk, grads.dk, long(nq), stream);
    convert_to_bf16(p.dv, grads.dv, long(nv), stream);
  }
}

template <int Rank>
size_t count(const ConstTensorView<float, Rank>& t) { return size_t(t.size()); }

// Host buffers: upload (as In), run with a workspace of its own, download. The carried state is
// float32 on both sides; `initial` / `final` were checked and shaped by check_chunked_forward.
template <class In>
void forward_from_host(const AttentionInputs<float>& in, const ChunkedSizes& s, float* o_host,
                       const FenwickState<float>* initial, FenwickState<float>* final) {
  const WorkspaceLayout w(s, precision_of<In>(), false);
  const auto q = upload<In>(in.q.data, count(in.q)), k = upload<In>(in.k.data, count(in.k)),
             v = upload<In>(in.v.data, count(in.v));
  const DeviceBuffer<float> g(in.g.data, count(in.g)), lam(in.lam.data, count(in.lam));
  const DeviceBuffer<float> S0(initial ? initial->S.data() : nullptr, initial ? size_t(initial->S.size()) : 0);
  DeviceBuffer<float> S_final(final ? size_t(final->S.size()) : 0);
  DeviceBuffer<In> o(count(in.v));
  DeviceBuffer<unsigned char> workspace(w.bytes());
  run_forward<In>(s, w, workspace.get(), {q.get(), k.get(), v.get(), g.get(), lam.get()}, o.get(), nullptr,
                  {S0.get(), final ? S_final.get() : nullptr});
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  download(o, o_host);
  if (final) S_final.to_host(final->S.data());
}

template <class In>
void backward_from_host(const AttentionInputs<float>& in, const ChunkedSizes& s, const float* dout_host,
                        const AttentionGrads<float>& grads, const FenwickState<float>* initial,
                        const Tensor<float, 5>* d_final, Tensor<float, 5>* d_initial) {
  const WorkspaceLayout w(s, precision_of<In>(), true);
  const auto q = upload<In>(in.q.data, count(in.q)), k = upload<In>(in.k.data, count(in.k)),
             v = upload<In>(in.v.data, count(in.v)), dout = upload<In>(dout_host, count(in.v));
  const DeviceBuffer<float> g(in.g.data, count(in.g)), lam(in.lam.data, count(in.lam));
  const DeviceBuffer<float> S0(initial ? initial->S.data() : nullptr, initial ? size_t(initial->S.size()) : 0);
  const DeviceBuffer<float> dF(d_final ? d_final->data() : nullptr, d_final ? size_t(d_final->size()) : 0);
  if (d_initial) *d_initial = Tensor<float, 5>({Index(s.B), Index(s.H), Index(s.L0), Index(s.K), Index(s.V)});
  DeviceBuffer<float> dS0(d_initial ? size_t(d_initial->size()) : 0);
  DeviceBuffer<In> dq(count(in.q)), dk(count(in.k)), dv(count(in.v));
  DeviceBuffer<float> dg(count(in.g)), dlam(count(in.lam));
  DeviceBuffer<unsigned char> workspace(w.bytes());
  run_backward<In>(s, w, workspace.get(), {q.get(), k.get(), v.get(), g.get(), lam.get()}, dout.get(),
                   {dq.get(), dk.get(), dv.get(), dg.get(), dlam.get()}, nullptr, {S0.get(), nullptr},
                   {d_final ? dF.get() : nullptr, d_initial ? dS0.get() : nullptr});
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  download(dq, grads.dq.data); download(dk, grads.dk.data); download(dv, grads.dv.data);
  dg.to_host(grads.dg.data); dlam.to_host(grads.dlam.data);
  if (d_initial) dS0.to_host(d_initial->data());
}

// Packed sequences from host buffers, as forward_from_host / backward_from_host. With `final`:
// every sequence's state after its last token, from one [S,H,Lf,K,V] device buffer, each cut to
// its own num_levels(n_i) levels (the CPU's VarlenStateIO::final layout).
template <class In>
void forward_varlen_from_host(const AttentionInputs<float>& in, const ChunkedSizes& s, const Index* cu, float* o_host,
                              std::vector<FenwickState<float>>* final) {
  const WorkspaceLayout w(s, precision_of<In>(), false);
  const auto q = upload<In>(in.q.data, count(in.q)), k = upload<In>(in.k.data, count(in.k)),
             v = upload<In>(in.v.data, count(in.v));
  const DeviceBuffer<float> g(in.g.data, count(in.g)), lam(in.lam.data, count(in.lam));
  const size_t level = size_t(s.K) * s.V, per_seq = size_t(s.H) * s.Lf * level;
  DeviceBuffer<float> S_final(final ? size_t(s.B) * per_seq : 0);
  DeviceBuffer<In> o(count(in.v));
  DeviceBuffer<unsigned char> workspace(w.bytes());
  run_forward<In>(s, w, workspace.get(), {q.get(), k.get(), v.get(), g.get(), lam.get()}, o.get(), nullptr,
                  DeviceState{nullptr, final ? S_final.get() : nullptr}, cu);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  download(o, o_host);
  if (!final) return;
  std::vector<float> all(size_t(s.B) * per_seq);
  S_final.to_host(all.data());
  std::vector<FenwickState<float>> out(size_t(s.B));
  for (Index i = 0; i < s.B; ++i) {
    const Index n = cu[i + 1] - cu[i], levels = num_levels(n);
    out[size_t(i)].tokens = n;
    out[size_t(i)].S = Tensor<float, 5>({1, s.H, levels, s.K, s.V});
    for (Index h = 0; h < s.H; ++h)
      std::copy_n(all.data() + size_t(i) * per_seq + size_t(h) * s.Lf * level, size_t(levels) * level,
                  out[size_t(i)].S.data() + size_t(h) * levels * level);
  }
  *final = std::move(out);
}

template <class In>
void backward_varlen_from_host(const AttentionInputs<float>& in, const ChunkedSizes& s, const Index* cu,
                               const float* dout_host, const AttentionGrads<float>& grads) {
  const WorkspaceLayout w(s, precision_of<In>(), true);
  const auto q = upload<In>(in.q.data, count(in.q)), k = upload<In>(in.k.data, count(in.k)),
             v = upload<In>(in.v.data, count(in.v)), dout = upload<In>(dout_host, count(in.v));
  const DeviceBuffer<float> g(in.g.data, count(in.g)), lam(in.lam.data, count(in.lam));
  DeviceBuffer<In> dq(count(in.q)), dk(count(in.k)), dv(count(in.v));
  DeviceBuffer<float> dg(count(in.g)), dlam(count(in.lam));
  DeviceBuffer<unsigned char> workspace(w.bytes());
  run_backward<In>(s, w, workspace.get(), {q.get(), k.get(), v.get(), g.get(), lam.get()}, dout.get(),
                   {dq.get(), dk.get(), dv.get(), dg.get(), dlam.get()}, nullptr, DeviceState{}, DeviceStateGrads{},
                   cu);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  download(dq, grads.dq.data); download(dk, grads.dk.data); download(dv, grads.dv.data);
  dg.to_host(grads.dg.data); dlam.to_host(grads.dlam.data);
}

}  // namespace

std::size_t chunked_varlen_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts,
                                           ConstTensorView<Index, 1> cu_seqlens, Precision precision, bool backward) {
  return WorkspaceLayout(check_chunked_varlen(d, opts, cu_seqlens), precision, backward).bytes();
}

template <class In>
void chunked_forward_varlen_device(const DeviceInputs<In>& in, const AttentionDims& d,
                                   ConstTensorView<Index, 1> cu_seqlens, const ChunkedOptions& opts, In* o,
                                   void* workspace, std::size_t workspace_bytes, cudaStream_t stream,
                                   const Index* cu_seqlens_device, float* final_states) {
  const ChunkedSizes s = check_chunked_varlen(d, opts, cu_seqlens);
  check_pointers(in);
  check_pointer(o, "o");
  const WorkspaceLayout w(s, precision_of<In>(), false);
  check_workspace(w.bytes(), workspace, workspace_bytes);
  require_device();
  run_forward<In>(s, w, workspace, in, o, stream, DeviceState{nullptr, final_states}, cu_seqlens.data,
                  cu_seqlens_device);
}

template <class In>
void chunked_backward_varlen_device(const DeviceInputs<In>& in, const AttentionDims& d,
                                    ConstTensorView<Index, 1> cu_seqlens, const ChunkedOptions& opts, const In* dout,
                                    const DeviceGrads<In>& grads, void* workspace, std::size_t workspace_bytes,
                                    cudaStream_t stream, const Index* cu_seqlens_device) {
  const ChunkedSizes s = check_chunked_varlen(d, opts, cu_seqlens);
  check_pointers(in);
  check_pointer(dout, "dout");
  check_pointers(grads);
  const WorkspaceLayout w(s, precision_of<In>(), true);
  check_workspace(w.bytes(), workspace, workspace_bytes);
  require_device();
  run_backward<In>(s, w, workspace, in, dout, grads, stream, DeviceState{}, DeviceStateGrads{}, cu_seqlens.data,
                   cu_seqlens_device);
}

template <>
void chunked_forward_varlen<float>(const AttentionInputs<float>& in, ConstTensorView<Index, 1> cu_seqlens,
                                   const ChunkedOptions& opts, TensorView<float, 4> o, Precision precision,
                                   std::vector<FenwickState<float>>* final) {
  const ChunkedSizes s = check_chunked_varlen_host(in, cu_seqlens, opts);
  check_shape<4>("o", o.shape, in.v.shape, " = [1,T,H,V]");
  require_device();
  if (precision == Precision::bf16) forward_varlen_from_host<bf16>(in, s, cu_seqlens.data, o.data, final);
  else forward_varlen_from_host<float>(in, s, cu_seqlens.data, o.data, final);
}

template <>
void chunked_backward_varlen<float>(const AttentionInputs<float>& in, ConstTensorView<Index, 1> cu_seqlens,
                                    const ChunkedOptions& opts, ConstTensorView<float, 4> dout,
                                    const AttentionGrads<float>& grads, Precision precision) {
  const ChunkedSizes s = check_chunked_varlen_host(in, cu_seqlens, opts);
  check_shape<4>("dout", dout.shape, in.v.shape, " = [1,T,H,V]");
  check_grads<float>(grads, AttentionDims{1, in.q.shape[1], in.v.shape[2], in.q.shape[2], in.q.shape[3],
                                          in.v.shape[3], in.lam.shape[3]});
  require_device();
  if (precision == Precision::bf16) backward_varlen_from_host<bf16>(in, s, cu_seqlens.data, dout.data, grads);
  else backward_varlen_from_host<float>(in, s, cu_seqlens.data, dout.data, grads);
}

template void chunked_forward_varlen_device<float>(const DeviceInputs<float>&, const AttentionDims&,
                                                   ConstTensorView<Index, 1>, const ChunkedOptions&, float*, void*,
                                                   std::size_t, cudaStream_t, const Index*, float*);
template void chunked_forward_varlen_device<bf16>(const DeviceInputs<bf16>&, const AttentionDims&,
                                                  ConstTensorView<Index, 1>, const ChunkedOptions&, bf16*, void*,
                                                  std::size_t, cudaStream_t, const Index*, float*);
template void chunked_backward_varlen_device<float>(const DeviceInputs<float>&, const AttentionDims&,
                                                    ConstTensorView<Index, 1>, const ChunkedOptions&, const float*,
                                                    const DeviceGrads<float>&, void*, std::size_t, cudaStream_t,
                                                    const Index*);
template void chunked_backward_varlen_device<bf16>(const DeviceInputs<bf16>&, const AttentionDims&,
                                                   ConstTensorView<Index, 1>, const ChunkedOptions&, const bf16*,
                                                   const DeviceGrads<bf16>&, void*, std::size_t, cudaStream_t,
                                                   const Index*);

std::size_t chunked_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts, Precision precision,
                                    bool backward) {
  return WorkspaceLayout(check_chunked_dims(d, opts), precision, backward).bytes();
}

template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream,
                            const DeviceState& state) {
  const ChunkedSizes s = check_chunked_dims(d, opts);
  check_pointers(in);
  check_pointer(o, "o");
  check_state_pointers(s, state);
  const WorkspaceLayout w(s, precision_of<In>(), false);
  check_workspace(w.bytes(), workspace, workspace_bytes);
  require_device();
  run_forward<In>(s, w, workspace, in, o, stream, state);
}

template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  chunked_forward_device<In>(in, d, opts, o, workspace, workspace_bytes, stream, DeviceState{});
}

template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream, const DeviceState& state,
                             const DeviceStateGrads& state_grads) {
  const ChunkedSizes s = check_chunked_dims(d, opts);
  check_pointers(in);
  check_pointer(dout, "dout");
  check_pointers(grads);
  check_state_pointers(s, state);
  const WorkspaceLayout w(s, precision_of<In>(), true);
  check_workspace(w.bytes(), workspace, workspace_bytes);
  require_device();
  run_backward<In>(s, w, workspace, in, dout, grads, stream, state, state_grads);
}

template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream) {
  chunked_backward_device<In>(in, d, opts, dout, grads, workspace, workspace_bytes, stream, DeviceState{},
                              DeviceStateGrads{});
}

template <>
void chunked_forward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts, TensorView<float, 4> o,
                            const FenwickState<float>* initial, FenwickState<float>* final, Precision precision) {
  const ChunkedSizes s = check_chunked_forward(in, opts, o.shape, initial, final);
  require_device();
  if (precision == Precision::bf16) forward_from_host<bf16>(in, s, o.data, initial, final);
  else forward_from_host<float>(in, s, o.data, initial, final);
}

template <>
void chunked_forward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts, TensorView<float, 4> o,
                            Precision precision) {
  chunked_forward<float>(in, opts, o, nullptr, nullptr, precision);
}

template <>
void chunked_backward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                             ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads,
                             const FenwickState<float>* initial, const Tensor<float, 5>* d_final,
                             Tensor<float, 5>* d_initial, Precision precision) {
  const ChunkedSizes s = check_chunked_backward(in, opts, dout, grads, initial, d_final);
  require_device();
  if (precision == Precision::bf16) backward_from_host<bf16>(in, s, dout.data, grads, initial, d_final, d_initial);
  else backward_from_host<float>(in, s, dout.data, grads, initial, d_final, d_initial);
}

template <>
void chunked_backward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                             ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads,
                             Precision precision) {
  chunked_backward<float>(in, opts, dout, grads, nullptr, nullptr, nullptr, precision);
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
template void chunked_forward_device<float>(const DeviceInputs<float>&, const AttentionDims&, const ChunkedOptions&,
                                            float*, void*, std::size_t, cudaStream_t, const DeviceState&);
template void chunked_forward_device<bf16>(const DeviceInputs<bf16>&, const AttentionDims&, const ChunkedOptions&,
                                           bf16*, void*, std::size_t, cudaStream_t, const DeviceState&);
template void chunked_backward_device<float>(const DeviceInputs<float>&, const AttentionDims&,
                                             const ChunkedOptions&, const float*, const DeviceGrads<float>&, void*,
                                             std::size_t, cudaStream_t, const DeviceState&,
                                             const DeviceStateGrads&);
template void chunked_backward_device<bf16>(const DeviceInputs<bf16>&, const AttentionDims&, const ChunkedOptions&,
                                            const bf16*, const DeviceGrads<bf16>&, void*, std::size_t,
                                            cudaStream_t, const DeviceState&, const DeviceStateGrads&);

}  // namespace loglinear::cuda
