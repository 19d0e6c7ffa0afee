// Parameters and launcher of the decoding step (decode.cu).
#pragma once

#include "params.cuh"

namespace loglinear::cuda {

/// Device pointers and sizes of one decoding step (float32).
struct DecodeParams {
  int B, H, G, K, V, L, Lmax;
  long long t;     // tokens consumed before this step
  int levels;      // num_levels(t + 1): live levels after the step
  float* S;        // [B,H,Lmax,K,V] level states, updated in place
  const float *q, *k, *v, *g, *lam;  // [B,G,K], [B,G,K], [B,H,V], [B,H], [B,H,L]
  float* o;        // [B,H,V]
};

/// Cascade + decay + insert, then read (two kernels in stream order).
void launch_decode_step(const DecodeParams& p, cudaStream_t stream);

}  // namespace loglinear::cuda
