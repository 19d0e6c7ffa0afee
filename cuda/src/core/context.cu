// Context (loglinear/cuda/core/context.hpp): one non-blocking stream and a cuBLAS handle bound to
// it, in pedantic float32 math. No SPEC section.
#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/device.hpp>

#include "../cuda_check.cuh"
#include "cublas_check.cuh"

#include <stdexcept>
#include <utility>

namespace loglinear::cuda {

Context::Context() {
  if (!device_available())
    throw std::runtime_error("loglinear::cuda: no CUDA device is available (cudaGetDeviceCount); "
                             "train with --device cpu or run on a machine with an NVIDIA GPU");
  LOGLINEAR_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    LOGLINEAR_CUBLAS_CHECK(cublasCreate(&cublas_));
    LOGLINEAR_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // Pedantic: no TF32 or reduced-precision shortcuts, so a GEMM is a float32 GEMM (the CPU twin
    // is Eigen's float32 GEMM; agreement is float rounding of the summation order).
    LOGLINEAR_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_PEDANTIC_MATH));
    // Scalars alpha/beta come from the host.
    LOGLINEAR_CUBLAS_CHECK(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
  } catch (...) {
    if (cublas_) cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
    throw;
  }
}

Context::~Context() {
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
}

Context::Context(Context&& o) noexcept
    : stream_(std::exchange(o.stream_, nullptr)), cublas_(std::exchange(o.cublas_, nullptr)),
      matmul_(o.matmul_), scratch_(std::move(o.scratch_)) {}

Context& Context::operator=(Context&& o) noexcept {
  if (this != &o) {
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = std::exchange(o.stream_, nullptr);
    cublas_ = std::exchange(o.cublas_, nullptr);
    matmul_ = o.matmul_;
    scratch_ = std::move(o.scratch_);
  }
  return *this;
}

const char* matmul_name(Matmul m) { return m == Matmul::tf32 ? "tf32" : "fp32"; }

Matmul matmul_from_name(const std::string& name) {
  if (name == "fp32") return Matmul::fp32;
  if (name == "tf32") return Matmul::tf32;
  throw std::invalid_argument("matmul: expected fp32 or tf32, got \"" + name + "\"");
}

void Context::set_matmul(Matmul m) {
  // TF32_TENSOR_OP_MATH lets cublasSgemm round its inputs to TF32 on the tensor cores; PEDANTIC
  // forbids every reduced-precision shortcut (the CPU twin's arithmetic).
  LOGLINEAR_CUBLAS_CHECK(cublasSetMathMode(cublas_, m == Matmul::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  matmul_ = m;
}

void Context::synchronize() const { LOGLINEAR_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

float* Context::scratch(std::size_t floats) {
  // Growing frees the old block: wait until no queued kernel can still be reading it.
  if (floats > scratch_.bytes_allocated() / sizeof(float)) synchronize();
  scratch_.resize(floats);
  return scratch_.data();
}

}  // namespace loglinear::cuda
