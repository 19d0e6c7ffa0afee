// Context parallelism on the GPU: the CUDA chunked kernels as the ChunkedEngine of
// reference/loglinear/context_parallel/, so cp_forward / cp_backward run unchanged with every
// segment on the GPU, over any Communicator (NCCL: nccl/loglinear/nccl/communicator.hpp; MPI;
// one process). Host buffers in and out, as the host-buffer overloads of cuda::chunked_forward:
// each call uploads its segment and downloads its results (the all-gathered summaries are host
// buffers too). A rank's segment starts t0 = prefix + its first token after the call's start; the
// kernels run with the largest power of two <= C dividing t0 (cuda/chunked.hpp).
/// \file
/// \brief Context parallelism on the GPU: the CUDA chunked kernels as a ChunkedEngine
/// \ingroup floor_cuda
#pragma once

#include <loglinear/context_parallel/context_parallel.hpp>
#include <loglinear/cuda/chunked.hpp>

namespace loglinear::cuda {

/// The CUDA chunked forward and backward with a carried state as the chunked calls of context
/// parallelism (float32 host buffers; `precision` as cuda::chunked_forward). Pass its address as
/// the `engine` of loglinear::cp_forward / cp_backward.
class CudaChunkedEngine final : public ChunkedEngine<float> {
 public:
  /// @param precision storage of q, k, v on the GPU (Precision::bf16 rounds them on upload)
  explicit CudaChunkedEngine(Precision precision = Precision::fp32) : precision_(precision) {}

  /// cuda::chunked_forward with the state; throws as it does (e.g. chunk_size > 64).
  void forward(const AttentionInputs<float>& in, const ChunkedOptions& opts, TensorView<float, 4> o,
               const FenwickState<float>* initial, FenwickState<float>* final) const override {
    chunked_forward<float>(in, opts, o, initial, final, precision_);
  }
  /// cuda::chunked_backward with the state.
  void backward(const AttentionInputs<float>& in, const ChunkedOptions& opts, ConstTensorView<float, 4> dout,
                const AttentionGrads<float>& grads, const FenwickState<float>* initial,
                const Tensor<float, 5>* d_final, Tensor<float, 5>* d_initial) const override {
    chunked_backward<float>(in, opts, dout, grads, initial, d_final, d_initial, precision_);
  }

 private:
  Precision precision_;
};

}  // namespace loglinear::cuda
