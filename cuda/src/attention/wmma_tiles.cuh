// Shared pieces of the tensor-core kernels (chunked_fwd_tc.cu, chunked_bwd_tc.cu; SPEC.md §5):
// WMMA fragment types for bf16 16 x 16 x 16 products with float32 accumulators, the shared-memory
// padding rule, the hi + lo operand split and the one product of split operands (mma_split), the
// staging of chunk rows and state tiles into shared memory, and the one way a 16 x 16 result tile
// is added to a gradient in global memory. O(1) per element; the FFMA kernels need none of it.
#pragma once

#include "indexing.cuh"

#include <mma.h>

namespace loglinear::cuda::tc {

using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;
using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragAt = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major>;  // transposed view
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBt = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;  // transposed view
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

constexpr int kWarps = 8, kThreads = 32 * kWarps;
// Rows of bf16 tiles are padded by 8 elements (16 bytes) and float tiles by 4 (16 bytes): the
// leading dimensions stay multiples of what WMMA requires (8 and 4) and consecutive rows start
// in different banks. Every tile pointer handed to WMMA stays 32-byte aligned.
constexpr int kPadH = 8, kPadF = 4;

__host__ __device__ constexpr size_t align128(size_t bytes) { return (bytes + 127) / 128 * 128; }

/// Stores x as the pair hi + lo of bf16 numbers (hi = bf16(x), lo = bf16(x - hi)), which keeps
/// about 16 bits of mantissa where bf16 alone keeps 8. Every operand the kernels compute (masked
/// scores, scaled rows, states, state gradients) is carried this way, and a product with it costs
/// two MMAs (hi and lo; three when both operands are computed): the inputs' own bf16 rounding is
/// then the only bf16 error left. With single bf16 operands, dg (a reverse cumulative sum of
/// differences of large terms, eq. 10) is 2 % off the double reference at T = 1000.
__device__ __forceinline__ void split_bf16(float x, bf16* hi, bf16* lo, int at) {
  const bf16 h = __float2bfloat16(x);
  hi[at] = h;
  lo[at] = __float2bfloat16(x - __bfloat162float(h));
}

/// acc += A B for one 16 x 16 x 16 step: A's tile at `a` (leading dimension lda) in fragment
/// layout FA, B's at `b` in FB (the col_major layouts read a transposed view). A computed operand
/// is a hi + lo pair (split_bf16) whose lo half is at `a_lo` / `b_lo`; an input, exact in bf16,
/// passes nullptr. Each half costs one MMA, in the order hi hi, lo hi, hi lo; lo x lo, below
/// 2^-16 of the product, is left out.
template <class FA, class FB>
__device__ __forceinline__ void mma_split(FragC& acc, const bf16* a, const bf16* a_lo, int lda, const bf16* b,
                                          const bf16* b_lo, int ldb) {
  FA fa;
  FB fb;
  wmma::load_matrix_sync(fa, a, lda);
  wmma::load_matrix_sync(fb, b, ldb);
  wmma::mma_sync(acc, fa, fb, acc);
  if (a_lo != nullptr) {
    FA fa_lo;
    wmma::load_matrix_sync(fa_lo, a_lo, lda);
    wmma::mma_sync(acc, fa_lo, fb, acc);
  }
  if (b_lo != nullptr) {
    FB fb_lo;
    wmma::load_matrix_sync(fb_lo, b_lo, ldb);
    wmma::mma_sync(acc, fa, fb_lo, acc);
  }
}

/// Stages rows [0, C) of a chunk's bf16 rows `src` (row stride ld_src, cols wide) into a C x ld
/// shared tile `dst`; rows n.. past the end of the sequence are zero, so that whole 16-row tiles
/// can be multiplied.
__device__ __forceinline__ void stage_rows(bf16* dst, int ld, const bf16* src, long ld_src, int cols, int C, int n) {
  const bf16 zero = __float2bfloat16(0.f);
  for (int idx = threadIdx.x; idx < C * cols; idx += kThreads) {
    const int i = idx / cols, x = idx % cols;
    dst[i * ld + x] = i < n ? src[long(i) * ld_src + x] : zero;
  }
}

/// As stage_rows for the rows of k or v scaled by f_j = exp(Gamma - gamma_j) (stage 2 and its
/// backward), stored as the hi + lo pair of split_bf16.
__device__ __forceinline__ void stage_decayed_rows(bf16* hi, bf16* lo, int ld, const bf16* src, long ld_src,
                                                   int cols, int C, int n, const float* gam, float Gamma) {
  for (int idx = threadIdx.x; idx < C * cols; idx += kThreads) {
    const int j = idx / cols, x = idx % cols;
    split_bf16(j < n ? expf(Gamma - gam[j]) * ldf(src, long(j) * ld_src + x) : 0.f, hi, lo, j * ld + x);
  }
}

/// Stages a float32 rows x cols tile `src` (a K x V state or state gradient, row stride cols) as
/// the hi + lo pair of split_bf16, rows of stride ld.
__device__ __forceinline__ void stage_split_tile(bf16* hi, bf16* lo, int ld, const float* src, int rows, int cols) {
  for (int idx = threadIdx.x; idx < rows * cols; idx += kThreads) {
    const int r = idx / cols, x = idx % cols;
    split_bf16(src[idx], hi, lo, r * ld + x);
  }
}

/// Adds the accumulator tile `acc` to rows row0..row0+15 (only those < n) and columns
/// col0..col0+15 of the row-major float array `dst` (row stride ld), through the calling warp's
/// own 16 x 16 float `scratch` in shared memory. Atomic for dq / dk, which the heads of a group
/// share; plain for dv, whose rows belong to one head and one block.
template <bool Atomic>
__device__ __forceinline__ void add_tile(const FragC& acc, float* scratch, float* dst, long ld, int row0,
                                         int col0, int n) {
  wmma::store_matrix_sync(scratch, acc, 16, wmma::mem_row_major);
  __syncwarp();
  for (int e = threadIdx.x % 32; e < 256; e += 32) {
    const int r = e / 16, c = e % 16;
    if (row0 + r < n) {
      float* at = dst + long(row0 + r) * ld + col0 + c;
      if constexpr (Atomic) atomicAdd(at, scratch[e]); else *at += scratch[e];
    }
  }
  __syncwarp();  // scratch is reused by the warp's next tile
}

}  // namespace loglinear::cuda::tc
