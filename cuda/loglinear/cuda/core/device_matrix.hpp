// Device memory of the GPU training path: DeviceBuffer<T> (an owning, growable array on the GPU)
// and DeviceMatrix, the twin of the reference's RowMatrix<float>: a row-major [rows, cols] float
// matrix, N = B*T rows of activations or one parameter tensor. Layers take and return these the
// way the CPU layers take and return RowMatrix (nn/linear.hpp and its twin cuda/nn/linear.hpp).
// Memory is allocated with cudaMalloc when a buffer grows past its capacity and never shrinks, so
// a training step that repeats the same shapes allocates only in its first step.
/// \file
/// \brief Device memory of the GPU training path: DeviceBuffer<T> and DeviceMatrix (twin of RowMatrix<float>)
/// \ingroup floor_cuda
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace loglinear::cuda {

/// Throws std::runtime_error("<what>: <CUDA error string>") unless err is cudaSuccess.
inline void throw_on_cuda_error(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

/// Device bytes held by every DeviceBuffer of this process right now, and the most ever held
/// (what the training JSON reports as peak_device_memory_bytes). The CUDA context and cuBLAS's own
/// workspace are not DeviceBuffers and are not counted.
struct DeviceMemory {
  /// Bytes held now.
  static std::size_t in_use() { return counter(0).load(); }
  /// The most bytes held at once since the process started.
  static std::size_t peak() { return counter(1).load(); }
  /// Records an allocation (+bytes) or a release (-bytes).
  static void record(std::ptrdiff_t bytes) {
    const std::size_t now = counter(0).fetch_add(std::size_t(bytes)) + std::size_t(bytes);
    std::size_t seen = counter(1).load();
    while (now > seen && !counter(1).compare_exchange_weak(seen, now)) {
    }
  }

 private:
  static std::atomic<std::size_t>& counter(int which) {
    static std::atomic<std::size_t> c[2] = {0, 0};
    return c[which];
  }
};

/// An owning array of `T` in device memory that grows on demand (movable, not copyable).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  /// A buffer of `n` elements, contents unspecified. @throws std::runtime_error on a CUDA error.
  explicit DeviceBuffer(std::size_t n) { resize(n); }
  ~DeviceBuffer() { release(); }
  /// Takes o's memory; o becomes empty.
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  /// Frees ours, takes o's memory.
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  /// Sets the size to `n`, reallocating (contents lost) only when n exceeds the capacity.
  void resize(std::size_t n) {
    if (n > capacity_) {
      release();
      T* fresh = nullptr;  // cudaMalloc leaves its argument unspecified on failure
      throw_on_cuda_error(cudaMalloc(reinterpret_cast<void**>(&fresh), n * sizeof(T)),
                          ("cudaMalloc of " + std::to_string(n * sizeof(T)) + " bytes").c_str());
      ptr_ = fresh;
      capacity_ = n;
      DeviceMemory::record(std::ptrdiff_t(n * sizeof(T)));
    }
    size_ = n;
  }
  /// Number of elements.
  std::size_t size() const { return size_; }
  /// Device pointer of the first element (nullptr when empty).
  T* data() { return ptr_; }
  /// See data().
  const T* data() const { return ptr_; }
  /// Bytes allocated on the device (the capacity, which may exceed size()).
  std::size_t bytes_allocated() const { return capacity_ * sizeof(T); }

  /// Copies `n` = size() host elements in, asynchronously on `stream` (`host` must stay alive and
  /// unchanged until the stream reaches the copy; from pageable memory the call returns once the
  /// driver has staged the data, the copy itself may still be in flight).
  void upload(const T* host, cudaStream_t stream) {
    if (size_ == 0) return;
    throw_on_cuda_error(cudaMemcpyAsync(ptr_, host, size_ * sizeof(T), cudaMemcpyHostToDevice, stream),
                        "cudaMemcpyAsync (upload)");
  }
  /// Copies size() elements to `host` and waits for the stream.
  void download(T* host, cudaStream_t stream) const {
    if (size_ == 0) return;
    throw_on_cuda_error(cudaMemcpyAsync(host, ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost, stream),
                        "cudaMemcpyAsync (download)");
    throw_on_cuda_error(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
  /// Sets every element's bytes to zero, asynchronously on `stream`.
  void set_zero(cudaStream_t stream) {
    if (size_ == 0) return;
    throw_on_cuda_error(cudaMemsetAsync(ptr_, 0, size_ * sizeof(T), stream), "cudaMemsetAsync");
  }

 private:
  // Frees the memory (no throw: called from the destructor, where a failure has nowhere to go).
  void release() noexcept {
    if (ptr_) {
      cudaFree(ptr_);
      DeviceMemory::record(-std::ptrdiff_t(capacity_ * sizeof(T)));
    }
    ptr_ = nullptr;
    size_ = capacity_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

/// Row-major float matrix on the device, the twin of RowMatrix<float> (vectors are 1 x n).
class DeviceMatrix {
 public:
  DeviceMatrix() = default;
  /// A rows x cols matrix, contents unspecified. @throws std::invalid_argument for negative sizes.
  DeviceMatrix(Index rows, Index cols) { resize(rows, cols); }
  /// Sets the shape; contents are unspecified unless the element count is unchanged (then the
  /// values stay: resize(cols, rows) is a free reshape, as on RowMatrix).
  /// @throws std::invalid_argument "rows, cols: expected >= 0 ..." for a negative size.
  void resize(Index rows, Index cols);
  /// Rows.
  Index rows() const { return rows_; }
  /// Columns.
  Index cols() const { return cols_; }
  /// rows * cols.
  Index size() const { return rows_ * cols_; }
  /// Device pointer, row-major.
  float* data() { return buf_.data(); }
  /// See data().
  const float* data() const { return buf_.data(); }
  /// Bytes allocated (capacity).
  std::size_t bytes_allocated() const { return buf_.bytes_allocated(); }

  /// Resizes to m's shape and copies m in, asynchronously on `stream` (m may change once the call
  /// returns: from pageable memory, as RowMatrix storage is, the driver stages the data first).
  void upload(const RowMatrix<float>& m, cudaStream_t stream);
  /// The values as a host matrix (waits for `stream`).
  RowMatrix<float> download(cudaStream_t stream) const;
  /// Zero every element, asynchronously on `stream`.
  void set_zero(cudaStream_t stream) { buf_.set_zero(stream); }

 private:
  DeviceBuffer<float> buf_;
  Index rows_ = 0, cols_ = 0;
};

/// A matrix uploaded from the host; waits for the copy. Convenience for tests.
DeviceMatrix to_device(const RowMatrix<float>& m, cudaStream_t stream = nullptr);

}  // namespace loglinear::cuda
