// SwiGLU MLP on the GPU (loglinear/cuda/nn/swiglu.hpp): cuBLAS GEMMs (nn/linear.hpp's gemm, float32
// pedantic) around two elementwise kernels, the gate h = SiLU(gate) ⊙ up and its backward.
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/nn/linear.hpp>
#include <loglinear/cuda/nn/swiglu.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

std::string shape(const DeviceMatrix& m) { return "[" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "]"; }
std::string shape(Index r, Index c) { return "[" + std::to_string(r) + ", " + std::to_string(c) + "]"; }

void require(bool ok, const std::string& name, const std::string& expected, const DeviceMatrix& got) {
  if (!ok) throw std::invalid_argument(name + ": expected " + expected + ", got " + shape(got));
}

// The three weights agree with d (the input's width) and with each other (hidden = W_gate.rows()).
void check_weights(Index d, const DeviceMatrix& W_gate, const DeviceMatrix& W_up, const DeviceMatrix& W_down) {
  const Index hidden = W_gate.rows();
  require(W_gate.cols() == d, "W_gate", "shape [hidden, d] with d = " + std::to_string(d), W_gate);
  require(W_up.rows() == hidden && W_up.cols() == d, "W_up", "shape [hidden, d] = " + shape(hidden, d), W_up);
  require(W_down.rows() == d && W_down.cols() == hidden, "W_down", "shape [d, hidden] = " + shape(d, hidden), W_down);
}

// h = SiLU(gate) ⊙ up.
__global__ void swiglu_gate(const float* __restrict__ gate, const float* __restrict__ up, std::int64_t n,
                            float* __restrict__ h) {
  LOGLINEAR_GRID_LOOP(i, n) h[i] = device::silu(gate[i]) * up[i];
}

// dup = dh ⊙ SiLU(gate), dgate = (dh ⊙ up) ⊙ SiLU'(gate), as the CPU twin.
__global__ void swiglu_gate_backward(const float* __restrict__ dh, const float* __restrict__ gate,
                                     const float* __restrict__ up, std::int64_t n, float* __restrict__ dgate,
                                     float* __restrict__ dup) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float g = gate[i], d = dh[i];
    dup[i] = d * device::silu(g);
    dgate[i] = (d * up[i]) * device::silu_grad(g);
  }
}

}  // namespace

void swiglu_forward(Context& ctx, const DeviceMatrix& x, const DeviceMatrix& W_gate, const DeviceMatrix& W_up,
                    const DeviceMatrix& W_down, SwiGluCache& cache, DeviceMatrix& y) {
  const Index N = x.rows(), d = x.cols(), hidden = W_gate.rows();
  check_weights(d, W_gate, W_up, W_down);
  if (&cache.x != &x) copy(ctx, x, cache.x);
  cache.gate.resize(N, hidden);
  cache.up.resize(N, hidden);
  cache.h.resize(N, hidden);
  y.resize(N, d);
  if (N == 0 || d == 0) return;
  if (hidden == 0) {  // an empty sum: y = 0 (cuBLAS refuses k = 0 with these leading dimensions)
    y.set_zero(ctx.stream());
    return;
  }
  const float* xs = cache.x.data();  // y may be x: read the copy
  gemm(ctx, false, true, N, hidden, d, 1.f, xs, W_gate.data(), 0.f, cache.gate.data());
  gemm(ctx, false, true, N, hidden, d, 1.f, xs, W_up.data(), 0.f, cache.up.data());
  swiglu_gate<<<blocks_for(N * hidden), kThreads, 0, ctx.stream()>>>(cache.gate.data(), cache.up.data(), N * hidden,
                                                                     cache.h.data());
  check_launch("swiglu_gate");
  gemm(ctx, false, true, N, d, hidden, 1.f, cache.h.data(), W_down.data(), 0.f, y.data());
}

void swiglu_backward(Context& ctx, const DeviceMatrix& dy, const DeviceMatrix& W_gate, const DeviceMatrix& W_up,
                     const DeviceMatrix& W_down, SwiGluCache& cache, DeviceMatrix& dW_gate, DeviceMatrix& dW_up,
                     DeviceMatrix& dW_down, DeviceMatrix& dx, bool accumulate_dx) {
  const Index N = cache.x.rows(), d = cache.x.cols(), hidden = W_gate.rows();
  require(dy.rows() == N && dy.cols() == d, "dy", "the forward's shape " + shape(cache.x), dy);
  check_weights(d, W_gate, W_up, W_down);
  require(cache.h.rows() == N && cache.h.cols() == hidden, "W_gate",
          "the forward's hidden = " + std::to_string(cache.h.cols()) + " rows", W_gate);
  require(dW_gate.rows() == hidden && dW_gate.cols() == d, "dW_gate", "the shape of W_gate " + shape(W_gate), dW_gate);
  require(dW_up.rows() == hidden && dW_up.cols() == d, "dW_up", "the shape of W_up " + shape(W_up), dW_up);
  require(dW_down.rows() == d && dW_down.cols() == hidden, "dW_down", "the shape of W_down " + shape(W_down), dW_down);
  if (accumulate_dx)
    require(dx.rows() == N && dx.cols() == d, "dx", "the forward's shape " + shape(cache.x) + " to accumulate into", dx);
  else
    dx.resize(N, d);
  cache.dh.resize(N, hidden);
  cache.dgate.resize(N, hidden);
  cache.dup.resize(N, hidden);
  if (N == 0 || d == 0) return;
  if (hidden == 0) {  // no weights to update; dx is an empty sum
    if (!accumulate_dx) dx.set_zero(ctx.stream());
    return;
  }
  // forward: y = h W_down^T, h = SiLU(gate) ⊙ up, gate = x W_gate^T, up = x W_up^T.
  // dW_down [d, hidden] += dy^T [d, N] h [N, hidden]
  gemm(ctx, true, false, d, hidden, N, 1.f, dy.data(), cache.h.data(), 1.f, dW_down.data());
  // dh [N, hidden] = dy [N, d] W_down [d, hidden]
  gemm(ctx, false, false, N, hidden, d, 1.f, dy.data(), W_down.data(), 0.f, cache.dh.data());
  swiglu_gate_backward<<<blocks_for(N * hidden), kThreads, 0, ctx.stream()>>>(
      cache.dh.data(), cache.gate.data(), cache.up.data(), N * hidden, cache.dgate.data(), cache.dup.data());
  check_launch("swiglu_gate_backward");
  // dW_gate, dW_up [hidden, d] += dgate^T, dup^T [hidden, N] x [N, d]
  gemm(ctx, true, false, hidden, d, N, 1.f, cache.dgate.data(), cache.x.data(), 1.f, dW_gate.data());
  gemm(ctx, true, false, hidden, d, N, 1.f, cache.dup.data(), cache.x.data(), 1.f, dW_up.data());
  // dx [N, d] (+)= dgate [N, hidden] W_gate [hidden, d] + dup W_up
  gemm(ctx, false, false, N, d, hidden, 1.f, cache.dgate.data(), W_gate.data(), accumulate_dx ? 1.f : 0.f, dx.data());
  gemm(ctx, false, false, N, d, hidden, 1.f, cache.dup.data(), W_up.data(), 1.f, dx.data());
}

}  // namespace loglinear::cuda::nn
