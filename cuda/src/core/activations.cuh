// Device twins of reference/loglinear/core/activations.hpp, with the same names and formulas
// (softplus as max(x,0) + log1p(e^-|x|), sigmoid through e^-|x|), so that every kernel computes
// what its CPU twin computes, to float rounding of the device's libm (erff, expf, log1pf are
// within 2 ulp, CUDA Programming Guide, "Mathematical Functions").
#pragma once

#include <cmath>

namespace loglinear::cuda::device {

/// Logistic sigmoid through e^-|x|.
__device__ inline float sigmoid(float x) {
  const float e = expf(-fabsf(x));
  return x >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
}
/// log(1 + e^x) = max(x, 0) + log1p(e^-|x|); derivative sigmoid(x).
__device__ inline float softplus(float x) { return fmaxf(x, 0.f) + log1pf(expf(-fabsf(x))); }
/// log sigmoid(x) = -softplus(-x).
__device__ inline float log_sigmoid(float x) { return -softplus(-x); }
/// Exact (erf) GELU x Phi(x).
__device__ inline float gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
/// Phi(x) + x phi(x).
__device__ inline float gelu_grad(float x) {
  const float Phi = 0.5f * (1.f + erff(x * 0.70710678118654752f));
  const float phi = expf(-0.5f * x * x) * 0.39894228040143268f;
  return Phi + x * phi;
}
/// x sigmoid(x).
__device__ inline float silu(float x) { return x * sigmoid(x); }
/// sigmoid(x) (1 + x (1 - sigmoid(x))).
__device__ inline float silu_grad(float x) {
  const float s = sigmoid(x);
  return s * (1.f + x * (1.f - s));
}

}  // namespace loglinear::cuda::device
