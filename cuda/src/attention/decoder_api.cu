// The public decoding step of loglinear/cuda/decoder.hpp: validate once (checks.cuh), then the
// fused kernel of decoder_step.cu. The host overload copies the state in and out around the same
// launch. O(L K V) per stream and token plus the copies; sibling:
// reference/loglinear/attention/decoder.cpp, the CPU Decoder.
#include <loglinear/cuda/decoder.hpp>

#include "buffers.cuh"
#include "checks.cuh"
#include "launch.cuh"

namespace loglinear::cuda {

namespace {
// A checked step, queued on `stream`.
void run_decode_step(DecodeParams p, float* state, const float* q_t, const float* k_t, const float* v_t,
                     const float* g_t, const float* lam_t, float* o_t, cudaStream_t stream) {
  p.S = state; p.q = q_t; p.k = k_t; p.v = v_t; p.g = g_t; p.lam = lam_t; p.o = o_t;
  launch_decode_step(p, stream);
}
}  // namespace

void decode_step_device(const DecodeDims& d, float* state, Index tokens, const float* q_t, const float* k_t,
                        const float* v_t, const float* g_t, const float* lam_t, float* o_t, cudaStream_t stream) {
  const DecodeParams p = check_decode_dims(d, tokens);
  check_pointer(state, "state"); check_pointer(q_t, "q_t"); check_pointer(k_t, "k_t");
  check_pointer(v_t, "v_t"); check_pointer(g_t, "g_t"); check_pointer(lam_t, "lam_t"); check_pointer(o_t, "o_t");
  require_device();
  run_decode_step(p, state, q_t, k_t, v_t, g_t, lam_t, o_t, stream);
}

void decode_step_device_ragged(const DecodeDims& d, float* state, Index max_tokens, const std::int64_t* stream_tokens,
                               const float* q_t, const float* k_t, const float* v_t, const float* g_t,
                               const float* lam_t, float* o_t, cudaStream_t stream, bool padding_is_zero) {
  DecodeParams p = check_decode_dims(d, max_tokens);
  if (stream_tokens == nullptr) {
    throw std::invalid_argument("stream_tokens: expected a device pointer to B token counts, got nullptr");
  }
  check_pointer(state, "state"); check_pointer(q_t, "q_t"); check_pointer(k_t, "k_t");
  check_pointer(v_t, "v_t"); check_pointer(g_t, "g_t"); check_pointer(lam_t, "lam_t"); check_pointer(o_t, "o_t");
  require_device();
  p.stream_tokens = stream_tokens;
  p.padding_is_zero = padding_is_zero;
  run_decode_step(p, state, q_t, k_t, v_t, g_t, lam_t, o_t, stream);
}

template <>
void decode_step<float>(TensorView<float, 5> state, Index tokens, ConstTensorView<float, 3> q_t,
                        ConstTensorView<float, 3> k_t, ConstTensorView<float, 3> v_t,
                        ConstTensorView<float, 2> g_t, ConstTensorView<float, 3> lam_t,
                        TensorView<float, 3> o_t) {
  const DecodeParams p = check_decode_step(state, tokens, q_t, k_t, v_t, g_t, lam_t, o_t);
  require_device();
  DeviceBuffer<float> S(state.data, size_t(state.size())), q(q_t.data, size_t(q_t.size())),
      k(k_t.data, size_t(k_t.size())), v(v_t.data, size_t(v_t.size())), g(g_t.data, size_t(g_t.size())),
      lam(lam_t.data, size_t(lam_t.size())), o(size_t(o_t.size()));
  run_decode_step(p, S.get(), q.get(), k.get(), v.get(), g.get(), lam.get(), o.get(), nullptr);
  LOGLINEAR_CUDA_CHECK(cudaDeviceSynchronize());
  S.to_host(state.data);
  o.to_host(o_t.data);
}

}  // namespace loglinear::cuda
