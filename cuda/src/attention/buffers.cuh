// Device memory of the host-buffer entry points: an RAII buffer, upload and download in the
// storage type of the call (float32, or bf16 rounded on the host), and the kernel that rounds the
// float32 accumulators of a bf16 call to bf16 on the device. No SPEC section; cost O(elements)
// per copy. The device-pointer API uses none of it except convert_to_bf16.
#pragma once

#include "convert.cuh"
#include "../cuda_check.cuh"

#include <cuda_bf16.h>

#include <cstddef>

namespace loglinear::cuda {

/// A device buffer of n elements of T, freed on scope exit; zero elements allocate nothing.
template <class T>
class DeviceBuffer {
 public:
  /// Allocates n elements (uninitialised).
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  /// Allocates n elements and copies them from `host`.
  DeviceBuffer(const T* host, std::size_t n) : DeviceBuffer(n) {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMemcpy(ptr_, host, n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }           ///< device pointer (nullptr when empty)
  std::size_t size() const { return n_; }   ///< number of elements
  /// Copies every element to `host`.
  void to_host(T* host) const {
    if (n_) LOGLINEAR_CUDA_CHECK(cudaMemcpy(host, ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t n_;
};

/// n floats from the host in storage type In: a plain copy for float, rounded to bf16 on the
/// host for __nv_bfloat16.
template <class In>
DeviceBuffer<In> upload(const float* host, std::size_t n);

/// Every element of `buffer` to the host as float (bf16 widened exactly).
template <class In>
void download(const DeviceBuffer<In>& buffer, float* host);

}  // namespace loglinear::cuda
