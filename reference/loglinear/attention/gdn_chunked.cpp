// Chunked form of log-linear Gated DeltaNet, SPEC.md §6: orchestrates the stages of
// gdn_chunked_stages.cpp per (batch, head), forward and backward (docs/backward.md §4,
// eqs. 28-36). Cost O(T C (C + K + V) + T log(T/C) K V) per head; memory O(N K V) per head in
// flight (the chunk writes Ubar_z and one level's Hin, N = number of chunks) plus O(T K) for the
// WY factors W and the state-facing queries q~.
#include <loglinear/attention/gdn_chunked.hpp>
#include <loglinear/attention/gdn_chunked_stages.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/gdn_checks.hpp>
#include <loglinear/core/parallel.hpp>

#include <algorithm>
#include <string>

namespace loglinear {

namespace {

// The chunk size this call uses (effective_chunk_size: C above T is clamped), after refusing
// work arrays that cannot fit: the C x C level table and the dozen C x C blocks of one chunk's
// backward, and the K x V matrices of one head (Ubar, Hin and dUbar, one each per chunk).
template <class Scalar>
Index gdn_chunk_size_for(Index requested, const AttentionDims& d) {
  const Index C = effective_chunk_size(requested, d.T);
  check_allocation("chunk_size: the C x C level table and the blocks of one chunk, C = " +
                       std::to_string(C) + " (T = " + std::to_string(d.T) + ")",
                   checked_product("chunk_size: 16 x C x C", {16, C, C}), sizeof(int) + sizeof(Scalar));
  const Index chunks = (d.T - 1) / C + 1;
  check_allocation("q, v: the K x V chunk writes and level states of one head, 3 x " +
                       std::to_string(chunks) + " chunks of C = " + std::to_string(C) +
                       " with K = " + std::to_string(d.K) + ", V = " + std::to_string(d.V),
                   checked_product("q, v: 3 x chunks x K x V", {3, chunks, d.K, d.V}), sizeof(Scalar));
  return C;
}

template <class Scalar>
GdnHeadInputs<Scalar> gdn_head_inputs(const GdnInputs<Scalar>& in, const AttentionDims& d, Index b,
                                      Index h) {
  return {{slice_bt(in.q, b, d.group_of(h)), slice_bt(in.k, b, d.group_of(h)), slice_bt(in.v, b, h),
           slice_bt(in.lam, b, h), slice_bt(in.g, b, h)},
          slice_bt(in.beta, b, h)};
}

// Stages 1-2 chunk by chunk (they share the chunk's UT transform), then Stages 3-4 per level.
template <class Scalar>
void gdn_chunked_forward_head(const GdnHeadInputs<Scalar>& x, const ChunkLayout& lay,
                              const std::vector<int>& lut, MatrixMap<Scalar> o) {
  const Vector<Scalar> gamma = chunk_local_cumsum(x.g, lay);
  GdnChunkSummaries<Scalar> sums(lay.T, x.k.cols(), x.v.cols(), lay.z_last - lay.z_first + 1);
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    const GdnChunkBlock<Scalar> blk = gdn_chunk_block(x, gamma, lay, z);
    gdn_stage1_intra_forward(x, blk, lay, lut, o);
    gdn_stage2_chunk_summary(x, gamma, blk, lay, sums);
  }
  for (int e = 0; e < lay.chunk_levels(); ++e) {
    const auto Hin = gdn_stage3_level_states(x, sums, gamma, lay, e);
    gdn_stage4_level_output(x, sums, Hin, lay, e, o);
  }
}

// One head of the backward: Stage 2 for every chunk (the WY factors the level scans need); per
// level the state scan (Stage 3) and its reverse (eqs. 29-31), collecting the gradients of
// W, q~ and Ubar over all levels; then Stages 1-2 backward chunk by chunk (eqs. 32-35 and the
// UT inverse's backward, eqs. 23-24); finally dg by the identity of eq. 36.
template <class Scalar>
void gdn_chunked_backward_head(const GdnHeadInputs<Scalar>& x, const ChunkLayout& lay,
                               const std::vector<int>& lut, const ConstMatrixMap<Scalar>& dout,
                               GdnHeadGrads<Scalar>& gr, VectorMap<Scalar> dg) {
  const Index K = x.k.cols(), V = x.v.cols(), chunks = lay.z_last - lay.z_first + 1;
  const Vector<Scalar> gamma = chunk_local_cumsum(x.g, lay);
  GdnChunkSummaries<Scalar> sums(lay.T, K, V, chunks), dsums(lay.T, K, V, chunks);
  for (Index z = lay.z_first; z <= lay.z_last; ++z)
    gdn_stage2_chunk_summary(x, gamma, gdn_chunk_block(x, gamma, lay, z), lay, sums);
  for (int e = 0; e < lay.chunk_levels(); ++e) {
    const auto Hin = gdn_stage3_level_states(x, sums, gamma, lay, e);
    gdn_stage34_level_backward(x, sums, gamma, Hin, lay, e, dout, dsums, gr);
  }
  for (Index z = lay.z_first; z <= lay.z_last; ++z)
    gdn_stage12_chunk_backward(x, gamma, gdn_chunk_block(x, gamma, lay, z), lay, lut, sums, dsums,
                               dout, gr);
  // eq. 36 (eq. 10's identity, which holds for Gated DeltaNet by eq. 20): dlam and dv are
  // complete, so dg needs neither the forward output nor the derivatives of the decays.
  decay_gradient<Scalar>(x.lam, gr.dlam, x.v, gr.dv, Scalar(0), true, dg);
}

}  // namespace

template <class Scalar>
void gdn_chunked_forward(const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                         TensorView<Scalar, 4> o) {
  check_chunk_size(opts.chunk_size);
  const AttentionDims d = check_gdn_inputs(in);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  const Index C = gdn_chunk_size_for<Scalar>(opts.chunk_size, d);
  const ChunkLayout lay(d.T, 0, C);
  const std::vector<int> lut = level_table(C);
  for_each_head(d, [&](Index b, Index h) {
    gdn_chunked_forward_head(gdn_head_inputs(in, d, b, h), lay, lut, slice_bt(o, b, h));
  });
}

template <class Scalar>
void gdn_chunked_backward(const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                          ConstTensorView<Scalar, 4> dout, const GdnGrads<Scalar>& grads) {
  check_chunk_size(opts.chunk_size);
  const AttentionDims d = check_gdn_backward_arguments(in, dout, grads);
  const Index C = gdn_chunk_size_for<Scalar>(opts.chunk_size, d);
  // Every stage adds into the gradients (dg is written once, at the end).
  for (auto* p : {&grads.dq, &grads.dk, &grads.dv, &grads.dlam})
    std::fill(p->data, p->data + p->size(), Scalar(0));
  std::fill(grads.dbeta.data, grads.dbeta.data + grads.dbeta.size(), Scalar(0));

  const ChunkLayout lay(d.T, 0, C);
  const std::vector<int> lut = level_table(C);
  for_each_head_shared_qk<Scalar>(d, grads.dq, grads.dk, [&](Index b, Index h,
                                                             MatrixMap<Scalar> dq_bh,
                                                             MatrixMap<Scalar> dk_bh) {
    GdnHeadGrads<Scalar> gr{{dq_bh, dk_bh, slice_bt(grads.dv, b, h), slice_bt(grads.dlam, b, h)},
                            slice_bt(grads.dbeta, b, h)};
    gdn_chunked_backward_head(gdn_head_inputs(in, d, b, h), lay, lut, slice_bt(dout, b, h), gr,
                              slice_bt(grads.dg, b, h));
  });
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                            \
  template void gdn_chunked_forward<Scalar>(const GdnInputs<Scalar>&, const ChunkedOptions&,     \
                                            TensorView<Scalar, 4>);                              \
  template void gdn_chunked_backward<Scalar>(const GdnInputs<Scalar>&, const ChunkedOptions&,    \
                                             ConstTensorView<Scalar, 4>, const GdnGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
