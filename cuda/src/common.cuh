// Index helpers shared by the kernels: the [B,T,G|H,D] layout and the Fenwick level inside a
// chunk. One place for the index arithmetic, as reference/loglinear/core/tensor.hpp on the CPU.
#pragma once

#include "params.cuh"

namespace loglinear::cuda {

__device__ __forceinline__ int level_in_chunk(int i, int j) {  // ell(i, j), j <= i
  return i == j ? 0 : 32 - __clz(i ^ j);
}
__device__ __forceinline__ bool is_writer(int z, int e) { return ((z >> e) & 1) == 0; }
__device__ __forceinline__ bool is_reader(int z, int e) { return ((z >> e) & 1) == 1; }
__device__ __forceinline__ bool is_reset(int z, int e) {
  const int P = 2 << e;
  return z % P == P - 1;
}
/// Offsets into q/k ([B,T,G,K]), v/o ([B,T,H,V]), g ([B,T,H]) and lam ([B,T,H,L]).
template <class P>
__device__ __forceinline__ long qk_at(const P& p, int b, int t, int gr) {
  return ((long(b) * p.T + t) * p.G + gr) * p.K;
}
template <class P>
__device__ __forceinline__ long v_at(const P& p, int b, int t, int h) {
  return ((long(b) * p.T + t) * p.H + h) * p.V;
}
template <class P>
__device__ __forceinline__ long g_at(const P& p, int b, int t, int h) {
  return (long(b) * p.T + t) * p.H + h;
}
template <class P>
__device__ __forceinline__ long lam_at(const P& p, int b, int t, int h) {
  return ((long(b) * p.T + t) * p.H + h) * p.L;
}
/// Offset of the K x V matrix of chunk z of stream bh in a [B*H, N, K, V] buffer.
template <class P>
__device__ __forceinline__ long kv_at(const P& p, int bh, int z) {
  return (long(bh) * p.N + z) * p.K * p.V;
}
/// Offset of level e's K x V state entering chunk z in the [E, B*H, N, K, V] buffer Hin.
template <class P>
__device__ __forceinline__ long hin_at(const P& p, int e, int bh, int z) {
  return ((long(e) * p.B * p.H + bh) * p.N + z) * p.K * p.V;
}

}  // namespace loglinear::cuda
