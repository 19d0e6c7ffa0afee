// The public chunked entry points of loglinear/cuda/chunked.hpp: each validates once
// (checks.cuh), builds the workspace layout once (workspace.cuh) and queues the stages
// (chunked_launch.cu). The host-buffer overloads upload, run the device path without checking
// again, and download. Cost: the kernels' O(T C (K+V) + T log(T/C) K V) per head plus the copies.
// Sibling: reference/loglinear/attention/chunked.cpp, the CPU form with the same names.
#include <loglinear/cuda/chunked.hpp>

#include "buffers.cuh"
#include "checks.cuh"
#include "launch.cuh"
#include "workspace.cuh"

#include <type_traits>

namespace loglinear::cuda {

namespace {

using bf16 = __nv_bfloat16;

template <class In>
constexpr Precision precision_of() {
  return std::is_same_v<In, bf16> ? Precision::bf16 : Precision::fp32;
}

// A checked forward, queued on `stream`. For bf16 storage the kernels write o in float32 into
// the workspace and one conversion writes the caller's o.
template <class In>
void run_forward(const ChunkedSizes& s, const WorkspaceLayout& w, void* workspace, const DeviceInputs<In>& in,
                 In* o, cudaStream_t stream) {
  ChunkedParams<In> p = w.params<In>(s, workspace);
  p.q = in.q; p.k = in.k; p.v = in.v; p.g = in.g; p.lam = in.lam;
  if constexpr (std::is_same_v<In, float>) p.o = o;
  launch_chunked_forward(p, stream);
  if constexpr (std::is_same_v<In, bf16>) convert_to_bf16(p.o, o, long(s.B) * s.T * s.H * s.V, stream);
}

// A checked backward, queued on `stream`; dq, dk, dv accumulate in float32 as in run_forward.
template <class In>
void run_backward(const ChunkedSizes& s, const WorkspaceLayout& w, void* workspace, const DeviceInputs<In>& in,
                  const In* dout, const DeviceGrads<In>& grads, cudaStream_t stream) {
  ChunkedParams<In> p = w.params<In>(s, workspace);
  p.q = in.q; p.k = in.k; p.v = in.v; p.g = in.g; p.lam = in.lam; p.dout = dout;
  if constexpr (std::is_same_v<In, float>) { p.dq = grads.dq; p.dk = grads.dk; p.dv = grads.dv; }
  p.dg = grads.dg; p.dlam = grads.dlam;
  const size_t nq = size_t(s.B) * s.T * s.G * s.K, nv = size_t(s.B) * s.T * s.H * s.V,
               nkv = size_t(s.B) * s.H * s.N * s.K * s.V;
  // Every kernel adds into dq, dk, dv, dlam and dU (dg is written whole).
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dq, 0, nq * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dk, 0, nq * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dv, 0, nv * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dlam, 0, size_t(s.B) * s.T * s.H * s.L * sizeof(float), stream));
  LOGLINEAR_CUDA_CHECK(cudaMemsetAsync(p.dU, 0, nkv * sizeof(float), stream));
  launch_chunked_backward(p, stream);
  if constexpr (std::is_same_v<In, bf16>) {
    convert_to_bf16(p.dq, grads.dq, long(nq), stream);
    convert_to_bf16(p.dk, grads.dk, long(nq), stream);
    convert_to_bf16(p.dv, grads.dv, long(nv), stream);
  }
}

template <int Rank>
size_t count(const ConstTensorView<float, Rank>& t) { return size_t(t.size()); }

// Host buffers: upload (as In), run with a workspace of its own, download.
template <class In>
void forward_from_host(const AttentionInputs<float>& in, const ChunkedSizes& s, float* o_host) {
  const WorkspaceLayout w(s, precision_of<In>(), false);
  const auto q = upload<In>(in.q.data, count(in.q)), k = upload<In>(in.k.data, count(in.k)),
             v = upload<In>(in.v.data, count(in.v));
  const DeviceBuffer<float> g(in.g.data, count(in.g)), lam(in.lam.data, count(in.lam));
  DeviceBuffer<In> o(count(in.v));
  DeviceBuffer<unsigned char> workspace(w.bytes());
  run_forward<In>(s, w, workspace.get(), {q.get(), k.get(), v.get(), g.get(), lam.get()}, o.get(), nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  download(o, o_host);
}

template <class In>
void backward_from_host(const AttentionInputs<float>& in, const ChunkedSizes& s, const float* dout_host,
                        const AttentionGrads<float>& grads) {
  const WorkspaceLayout w(s, precision_of<In>(), true);
  const auto q = upload<In>(in.q.data, count(in.q)), k = upload<In>(in.k.data, count(in.k)),
             v = upload<In>(in.v.data, count(in.v)), dout = upload<In>(dout_host, count(in.v));
  const DeviceBuffer<float> g(in.g.data, count(in.g)), lam(in.lam.data, count(in.lam));
  DeviceBuffer<In> dq(count(in.q)), dk(count(in.k)), dv(count(in.v));
  DeviceBuffer<float> dg(count(in.g)), dlam(count(in.lam));
  DeviceBuffer<unsigned char> workspace(w.bytes());
  run_backward<In>(s, w, workspace.get(), {q.get(), k.get(), v.get(), g.get(), lam.get()}, dout.get(),
                   {dq.get(), dk.get(), dv.get(), dg.get(), dlam.get()}, nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  download(dq, grads.dq.data); download(dk, grads.dk.data); download(dv, grads.dv.data);
  dg.to_host(grads.dg.data); dlam.to_host(grads.dlam.data);
}

}  // namespace

std::size_t chunked_workspace_bytes(const AttentionDims& d, const ChunkedOptions& opts, Precision precision,
                                    bool backward) {
  return WorkspaceLayout(check_chunked_dims(d, opts), precision, backward).bytes();
}

template <class In>
void chunked_forward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                            In* o, void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  const ChunkedSizes s = check_chunked_dims(d, opts);
  check_pointers(in);
  check_pointer(o, "o");
  const WorkspaceLayout w(s, precision_of<In>(), false);
  check_workspace(w.bytes(), workspace, workspace_bytes);
  require_device();
  run_forward<In>(s, w, workspace, in, o, stream);
}

template <class In>
void chunked_backward_device(const DeviceInputs<In>& in, const AttentionDims& d, const ChunkedOptions& opts,
                             const In* dout, const DeviceGrads<In>& grads, void* workspace,
                             std::size_t workspace_bytes, cudaStream_t stream) {
  const ChunkedSizes s = check_chunked_dims(d, opts);
  check_pointers(in);
  check_pointer(dout, "dout");
  check_pointers(grads);
  const WorkspaceLayout w(s, precision_of<In>(), true);
  check_workspace(w.bytes(), workspace, workspace_bytes);
  require_device();
  run_backward<In>(s, w, workspace, in, dout, grads, stream);
}

template <>
void chunked_forward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts, TensorView<float, 4> o,
                            Precision precision) {
  const ChunkedSizes s = check_chunked_forward(in, opts, o.shape);
  require_device();
  if (precision == Precision::bf16) forward_from_host<bf16>(in, s, o.data);
  else forward_from_host<float>(in, s, o.data);
}

template <>
void chunked_backward<float>(const AttentionInputs<float>& in, const ChunkedOptions& opts,
                             ConstTensorView<float, 4> dout, const AttentionGrads<float>& grads,
                             Precision precision) {
  const ChunkedSizes s = check_chunked_backward(in, opts, dout, grads);
  require_device();
  if (precision == Precision::bf16) backward_from_host<bf16>(in, s, dout.data, grads);
  else backward_from_host<float>(in, s, dout.data, grads);
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

}  // namespace loglinear::cuda
