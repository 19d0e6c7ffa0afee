// Elementwise activation layers (loglinear/cuda/core/activations.hpp): one grid-stride kernel per
// direction, templated on the activation. The pointers are deliberately not __restrict__: the
// layers may run in place (y = x, dx = dy), and each element is read and written by one thread at
// one index only, so aliasing is safe.
#include <loglinear/cuda/core/activations.hpp>

#include "activations.cuh"
#include "launch.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda {
namespace {

enum class Act { silu, gelu, softplus };

template <Act A>
__device__ inline float act_value(float x) {
  if constexpr (A == Act::silu) return device::silu(x);
  else if constexpr (A == Act::gelu) return device::gelu(x);
  else return device::softplus(x);
}
template <Act A>
__device__ inline float act_grad(float x) {
  if constexpr (A == Act::silu) return device::silu_grad(x);
  else if constexpr (A == Act::gelu) return device::gelu_grad(x);
  else return device::sigmoid(x);  // d softplus / dx
}

template <Act A>
__global__ void act_forward_kernel(const float* x, std::int64_t n, float* y) {
  LOGLINEAR_GRID_LOOP(i, n) y[i] = act_value<A>(x[i]);
}
// dx = dy * f'(x), in that order (the CPU twin's dy.cwiseProduct(f'(x))).
template <Act A>
__global__ void act_backward_kernel(const float* x, const float* dy, std::int64_t n, float* dx) {
  LOGLINEAR_GRID_LOOP(i, n) dx[i] = dy[i] * act_grad<A>(x[i]);
}

void require_count(Index n) {
  if (n < 0) throw std::invalid_argument("n: expected >= 0 elements, got " + std::to_string(n));
}

template <Act A>
void forward(Context& ctx, const float* x, Index n, float* y, const char* name) {
  require_count(n);
  if (n == 0) return;
  act_forward_kernel<A><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(x, n, y);
  check_launch(name);
}

template <Act A>
void backward(Context& ctx, const float* x, const float* dy, Index n, float* dx, const char* name) {
  require_count(n);
  if (n == 0) return;
  act_backward_kernel<A><<<blocks_for(n), kThreads, 0, ctx.stream()>>>(x, dy, n, dx);
  check_launch(name);
}

template <Act A>
void forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y, const char* name) {
  y.resize(x.rows(), x.cols());  // a no-op when y is x
  forward<A>(ctx, x.data(), x.size(), y.data(), name);
}

template <Act A>
void backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx, const char* name) {
  if (dy.rows() != x.rows() || dy.cols() != x.cols())
    throw std::invalid_argument("dy: expected the shape of x [" + std::to_string(x.rows()) + ", " +
                                std::to_string(x.cols()) + "], got [" + std::to_string(dy.rows()) + ", " +
                                std::to_string(dy.cols()) + "]");
  dx.resize(x.rows(), x.cols());  // a no-op when dx is dy or x
  backward<A>(ctx, x.data(), dy.data(), x.size(), dx.data(), name);
}

}  // namespace

void silu_forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y) { forward<Act::silu>(ctx, x, y, "silu_forward"); }
void silu_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx) {
  backward<Act::silu>(ctx, x, dy, dx, "silu_backward");
}
void gelu_forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y) { forward<Act::gelu>(ctx, x, y, "gelu_forward"); }
void gelu_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx) {
  backward<Act::gelu>(ctx, x, dy, dx, "gelu_backward");
}
void softplus_forward(Context& ctx, const DeviceMatrix& x, DeviceMatrix& y) {
  forward<Act::softplus>(ctx, x, y, "softplus_forward");
}
void softplus_backward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& dy, DeviceMatrix& dx) {
  backward<Act::softplus>(ctx, x, dy, dx, "softplus_backward");
}

void silu_forward(Context& ctx, const float* x, Index n, float* y) { forward<Act::silu>(ctx, x, n, y, "silu_forward"); }
void silu_backward(Context& ctx, const float* x, const float* dy, Index n, float* dx) {
  backward<Act::silu>(ctx, x, dy, n, dx, "silu_backward");
}
void gelu_forward(Context& ctx, const float* x, Index n, float* y) { forward<Act::gelu>(ctx, x, n, y, "gelu_forward"); }
void gelu_backward(Context& ctx, const float* x, const float* dy, Index n, float* dx) {
  backward<Act::gelu>(ctx, x, dy, n, dx, "gelu_backward");
}
void softplus_forward(Context& ctx, const float* x, Index n, float* y) {
  forward<Act::softplus>(ctx, x, n, y, "softplus_forward");
}
void softplus_backward(Context& ctx, const float* x, const float* dy, Index n, float* dx) {
  backward<Act::softplus>(ctx, x, dy, n, dx, "softplus_backward");
}

}  // namespace loglinear::cuda
