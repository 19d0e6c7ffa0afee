// Linear layer on cuBLAS (loglinear/cuda/nn/linear.hpp). Row-major X is column-major X^T with the
// same pointer, so the row-major product C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T:
// one cublasSgemm with the operands swapped and nothing copied.
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/nn/linear.hpp>

#include "../core/cublas_check.cuh"
#include "../core/launch.cuh"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

constexpr Index kMaxInt = 2147483647;

std::string shape(const DeviceMatrix& m) { return "[" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "]"; }

void require(bool ok, const std::string& name, const std::string& expected, const DeviceMatrix& got) {
  if (!ok) throw std::invalid_argument(name + ": expected " + expected + ", got " + shape(got));
}


}  // namespace

void gemm(Context& ctx, bool transA, bool transB, Index m, Index n, Index k, float alpha, const float* A,
          const float* B, float beta, float* C) {
  if (m < 0 || n < 0 || k < 0 || m > kMaxInt || n > kMaxInt || k > kMaxInt)
    throw std::invalid_argument("m, n, k: expected sizes in [0, 2^31) (cuBLAS takes int), got " + std::to_string(m) +
                                ", " + std::to_string(n) + ", " + std::to_string(k));
  if (m == 0 || n == 0) return;
  // Column-major view: C^T [n, m] = op(B)^T [n, k] op(A)^T [k, m]; the leading dimension of a
  // row-major [r, c] matrix is c, and cuBLAS wants it >= 1 even when k = 0 (then C = beta C, as
  // the CPU twin's empty sum).
  const int lda = int(std::max<Index>(1, transA ? m : k)), ldb = int(std::max<Index>(1, transB ? k : n));
  LOGLINEAR_CUBLAS_CHECK(cublasSgemm(ctx.cublas(), transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     int(n), int(m), int(k), &alpha, B, ldb, A, lda, &beta, C, int(n)));
}

void linear_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, DeviceMatrix& y) {
  require(W.cols() == x.cols(), "W", "[out, in] with in = x.cols() = " + std::to_string(x.cols()), W);
  y.resize(x.rows(), W.rows());
  gemm(ctx, false, true, x.rows(), W.rows(), x.cols(), 1.f, x.data(), W.data(), 0.f, y.data());
}

void linear_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, const DeviceMatrix& b,
                    DeviceMatrix& y) {
  require(b.rows() == 1 && b.cols() == W.rows(), "b", "[1, out] with out = W.rows() = " + std::to_string(W.rows()), b);
  linear_forward(ctx, x, W, y);
  add_bias(ctx, y.data(), b.data(), y.rows(), y.cols());
}

void linear_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, const DeviceMatrix& dy,
                     DeviceMatrix& dW, DeviceMatrix& dx, bool accumulate_dx) {
  require(dy.rows() == x.rows() && dy.cols() == W.rows(), "dy",
          "[N, out] = [" + std::to_string(x.rows()) + ", " + std::to_string(W.rows()) + "]", dy);
  require(dW.rows() == W.rows() && dW.cols() == W.cols(), "dW", "the shape of W " + shape(W), dW);
  if (accumulate_dx)
    require(dx.rows() == x.rows() && dx.cols() == x.cols(), "dx", "the shape of x " + shape(x) + " to accumulate into", dx);
  else
    dx.resize(x.rows(), x.cols());
  // dW [out, in] += dy^T [out, N] x [N, in]
  gemm(ctx, true, false, W.rows(), W.cols(), x.rows(), 1.f, dy.data(), x.data(), 1.f, dW.data());
  // dx [N, in] (+)= dy [N, out] W [out, in]
  gemm(ctx, false, false, x.rows(), W.cols(), W.rows(), 1.f, dy.data(), W.data(), accumulate_dx ? 1.f : 0.f,
       dx.data());
}

void linear_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W, const DeviceMatrix& dy,
                     DeviceMatrix& dW, DeviceMatrix& db, DeviceMatrix& dx, bool accumulate_dx) {
  linear_backward(ctx, x, W, dy, dW, dx, accumulate_dx);
  column_sum(ctx, dy, db, true);
}

}  // namespace loglinear::cuda::nn
