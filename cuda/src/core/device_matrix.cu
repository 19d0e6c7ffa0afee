// DeviceMatrix (loglinear/cuda/core/device_matrix.hpp; DeviceBuffer is defined in the header, a
// template for any element type). No SPEC section; every call is one CUDA runtime call, checked.
#include <loglinear/cuda/core/device_matrix.hpp>

#include "../cuda_check.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda {

void DeviceMatrix::resize(Index rows, Index cols) {
  if (rows < 0 || cols < 0)
    throw std::invalid_argument("rows, cols: expected >= 0, got " + std::to_string(rows) + ", " + std::to_string(cols));
  buf_.resize(std::size_t(rows) * std::size_t(cols));
  rows_ = rows;
  cols_ = cols;
}

void DeviceMatrix::upload(const RowMatrix<float>& m, cudaStream_t stream) {
  resize(m.rows(), m.cols());
  buf_.upload(m.data(), stream);
}

RowMatrix<float> DeviceMatrix::download(cudaStream_t stream) const {
  RowMatrix<float> m(rows_, cols_);
  buf_.download(m.data(), stream);
  return m;
}

DeviceMatrix to_device(const RowMatrix<float>& m, cudaStream_t stream) {
  DeviceMatrix d;
  d.upload(m, stream);
  LOGLINEAR_CUDA_CHECK(cudaStreamSynchronize(stream));
  return d;
}

}  // namespace loglinear::cuda
