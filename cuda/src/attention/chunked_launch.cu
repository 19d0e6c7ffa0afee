// The order of the kernels of one chunked call (SPEC.md §5, stage numbers of
// reference/loglinear/attention/chunked_stages.hpp) and the one place that picks the FFMA or the
// tensor-core kernels. Cost: the launches only. The kernels are in chunked_{fwd,bwd}_{ffma,tc}.cu;
// the CPU twin of this order is reference/loglinear/attention/chunked.cpp.
#include "../cuda_check.cuh"
#include "launch.cuh"

#include <type_traits>

namespace loglinear::cuda {

// bf16 operands with tile-sized K, V and C take the tensor cores; everything else the FFMA
// kernels (float32 stays on FFMA on purpose: chunked_fwd_ffma.cu says why).

template <class In>
void launch_chunked_forward(const ChunkedParams<In>& p, cudaStream_t s) {
  launch_fwd_local_cumsum(p, s);  // gamma, read by every stage
  if constexpr (std::is_same_v<In, __nv_bfloat16>) {
    if (tensor_core_supported(p.K, p.V, p.C)) launch_chunked_forward_tc(p, s);
    else launch_chunked_forward_ffma(p, s);
  } else {
    launch_chunked_forward_ffma(p, s);
  }
  launch_state_forward(p, s);  // after stage 1, which writes o whole; nothing without a state
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

template <class In>
void launch_chunked_backward(const ChunkedParams<In>& p, cudaStream_t s) {
  launch_fwd_local_cumsum(p, s);  // nothing is kept from the forward: gamma, U and Hin again
  if constexpr (std::is_same_v<In, __nv_bfloat16>) {
    if (tensor_core_supported(p.K, p.V, p.C)) launch_chunked_backward_tc(p, s);
    else launch_chunked_backward_ffma(p, s);
  } else {
    launch_chunked_backward_ffma(p, s);
  }
  launch_state_backward(p, s);      // the carried state's terms of dq, dk, dv, dlam; dS0, dG_last
  launch_bwd_decay_gradient(p, s);  // last: it reads the complete dlam and dv
  LOGLINEAR_CUDA_CHECK(cudaGetLastError());
}

template void launch_chunked_forward<float>(const ChunkedParams<float>&, cudaStream_t);
template void launch_chunked_forward<__nv_bfloat16>(const ChunkedParams<__nv_bfloat16>&, cudaStream_t);
template void launch_chunked_backward<float>(const ChunkedParams<float>&, cudaStream_t);
template void launch_chunked_backward<__nv_bfloat16>(const ChunkedParams<__nv_bfloat16>&, cudaStream_t);

}  // namespace loglinear::cuda
