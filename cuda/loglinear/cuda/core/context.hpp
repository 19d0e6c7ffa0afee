// What every GPU layer call runs on: one CUDA stream and one cuBLAS handle bound to it. A model
// owns one Context, so several models (runs) on one GPU queue their work on separate streams and
// do not serialise on the default stream. The twin of nothing on the CPU, where OpenMP's thread
// count plays this part.
/// \file
/// \brief One CUDA stream and one cuBLAS handle: what every GPU layer call runs on
/// \ingroup floor_cuda
#pragma once

#include <loglinear/cuda/core/device_matrix.hpp>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>

namespace loglinear::cuda {

/// A non-blocking CUDA stream with a cuBLAS handle bound to it (movable, not copyable).
///
/// The handle's math mode is CUBLAS_PEDANTIC_MATH: float32 GEMMs stay float32 (no TF32
/// down-conversion), so that every layer agrees with its CPU twin to float rounding; and the
/// handle runs with cuBLAS's deterministic defaults (no atomics in the GEMMs the layers call,
/// one stream per handle), so a GEMM of the same inputs gives the same bits on the same GPU.
class Context {
 public:
  /// Creates the stream and the handle on the current device.
  /// @throws std::runtime_error "loglinear::cuda: no CUDA device is available ..." without a GPU,
  ///         or naming the failing CUDA / cuBLAS call.
  Context();
  ~Context();
  Context(Context&& o) noexcept;             ///< takes o's stream and handle
  Context& operator=(Context&& o) noexcept;  ///< see the move constructor
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The stream every call on this context queues on.
  cudaStream_t stream() const { return stream_; }
  /// The cuBLAS handle (bound to stream()).
  cublasHandle_t cublas() const { return cublas_; }
  /// Waits until everything queued on stream() has finished; throws on an asynchronous error.
  void synchronize() const;
  /// Scratch memory of at least `floats` floats for one call's temporaries (partial sums of a
  /// reduction, the attention workspace). Calls on this context run in stream order, so one call's
  /// use ends before the next call's begins; the pointer is valid until the next scratch() call.
  float* scratch(std::size_t floats);

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer<float> scratch_;
};

}  // namespace loglinear::cuda
