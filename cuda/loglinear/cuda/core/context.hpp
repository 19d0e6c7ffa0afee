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
#include <string>

namespace loglinear::cuda {

/// The arithmetic of the float32 GEMMs a Context's cuBLAS handle runs.
enum class Matmul {
  /// CUBLAS_PEDANTIC_MATH: float32 products and sums, the CPU twin's arithmetic (the default).
  fp32,
  /// CUBLAS_TF32_TENSOR_OP_MATH: inputs rounded to TF32 (10-bit mantissa, unit roundoff 2^-11 =
  /// 4.9e-4) on the tensor cores, float32 accumulation: about 8x the float32 GEMM rate on an H200,
  /// at a normwise relative error of about 1e-3 per GEMM instead of float rounding. An opt-in
  /// for speed (loglinear-train --matmul tf32), as PyTorch's allow_tf32.
  tf32,
};

/// The name of a Matmul ("fp32", "tf32").
const char* matmul_name(Matmul m);
/// The Matmul of a name. @throws std::invalid_argument "matmul: expected fp32 or tf32, got ...".
Matmul matmul_from_name(const std::string& name);

/// A non-blocking CUDA stream with a cuBLAS handle bound to it (movable, not copyable).
///
/// The handle's math mode is CUBLAS_PEDANTIC_MATH by default (Matmul::fp32): float32 GEMMs stay
/// float32 (no TF32 down-conversion), so that every layer agrees with its CPU twin to float
/// rounding; and the handle runs with cuBLAS's deterministic defaults (no atomics in the GEMMs the
/// layers call, one stream per handle), so a GEMM of the same inputs gives the same bits on the
/// same GPU. set_matmul(Matmul::tf32) trades the first property for speed; the second holds in
/// both modes.
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
  /// The arithmetic of the GEMMs on this context's handle (Matmul::fp32 unless set_matmul changed it).
  Matmul matmul() const { return matmul_; }
  /// Sets the math mode of the handle: every later GEMM on this context runs in `m`.
  /// @throws std::runtime_error naming the cuBLAS call if it fails.
  void set_matmul(Matmul m);
  /// Waits until everything queued on stream() has finished; throws on an asynchronous error.
  void synchronize() const;
  /// Scratch memory of at least `floats` floats for one call's temporaries (partial sums of a
  /// reduction, the attention workspace). Calls on this context run in stream order, so one call's
  /// use ends before the next call's begins; the pointer is valid until the next scratch() call.
  float* scratch(std::size_t floats);

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  Matmul matmul_ = Matmul::fp32;
  DeviceBuffer<float> scratch_;
};

}  // namespace loglinear::cuda
