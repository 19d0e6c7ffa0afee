// Chunked form, SPEC.md §5: orchestrates the four stages of chunked_stages.cpp per
// (batch, head), forward and backward. Cost O(T C (K+V) + T log(T/C) K V); memory O(N K V)
// per head in flight (the chunk summaries U_z and one level's Hin).
#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/chunked_stages.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/parallel.hpp>

namespace loglinear {

namespace {

// The chunk size this call uses (effective_chunk_size: C above t0 + T is clamped), after
// refusing work arrays that cannot fit: the C x C level table and dense blocks of Stage 1, and
// the K x V chunk summaries U, Hin (and dU) of one head, one per chunk.
template <class Scalar>
Index chunk_size_for(Index requested, const AttentionDims& d) {
  const Index C = effective_chunk_size(requested, d.t0 + d.T);
  check_allocation("chunk_size: the C x C level table and block of C = " + std::to_string(C) +
                       " (T = " + std::to_string(d.T) + ")",
                   checked_product("chunk_size: C x C", {C, C}), sizeof(int) + sizeof(Scalar));
  const Index chunks = (d.t0 + d.T - 1) / C - d.t0 / C + 1;
  check_allocation("q, v: the K x V summaries of one head, " + std::to_string(chunks) +
                       " chunks of C = " + std::to_string(C) + " with K = " + std::to_string(d.K) +
                       ", V = " + std::to_string(d.V),
                   checked_product("q, v: chunks x K x V", {chunks, d.K, d.V}), sizeof(Scalar));
  return C;
}

template <class Scalar>
HeadInputs<Scalar> head_inputs(const AttentionInputs<Scalar>& in, const AttentionDims& d, Index b,
                               Index h) {
  return {slice_bt(in.q, b, d.group_of(h)), slice_bt(in.k, b, d.group_of(h)),
          slice_bt(in.v, b, h), slice_bt(in.lam, b, h), slice_bt(in.g, b, h)};
}

template <class Scalar>
void chunked_forward_head(const HeadInputs<Scalar>& x, const ChunkLayout& lay,
                          const std::vector<int>& lut, const std::vector<RowMatrix<Scalar>>& S0,
                          MatrixMap<Scalar> o) {
  const Vector<Scalar> gamma = chunk_local_cumsum(x.g, lay);
  stage1_intra_forward(x, gamma, lay, lut, o);
  const auto U = stage2_chunk_summaries(x, gamma, lay);
  for (int e = 0; e < lay.chunk_levels(); ++e) {
    const auto Hin = stage3_level_states(U, gamma, lay, e);
    stage4_level_output(x, gamma, Hin, lay, e, o);
  }
  if (!S0.empty()) initial_state_output(x, S0, lay.t0, o);
}

// One head of the backward: Stage 1 backward, then per level the state scan (Stage 3) and its
// reverse (Stages 3-4 backward) collecting dU, then Stage 2 backward once, then the state terms
// and dg. The forward output is not recomputed: dg uses sum_l lam dlam (eq. 9).
template <class Scalar>
void chunked_backward_head(const HeadInputs<Scalar>& x, const ChunkLayout& lay,
                           const std::vector<int>& lut, const std::vector<RowMatrix<Scalar>>& S0,
                           const std::vector<RowMatrix<Scalar>>& dF,
                           const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& gr,
                           VectorMap<Scalar> dg, std::vector<RowMatrix<Scalar>>& dS0) {
  const Vector<Scalar> gamma = chunk_local_cumsum(x.g, lay);
  stage1_intra_backward(x, gamma, lay, lut, dout, gr);
  const auto U = stage2_chunk_summaries(x, gamma, lay);
  std::vector<RowMatrix<Scalar>> dU(U.size(), RowMatrix<Scalar>::Zero(x.k.cols(), x.v.cols()));
  for (int e = 0; e < lay.chunk_levels(); ++e) {
    stage34_level_backward(x, gamma, stage3_level_states(U, gamma, lay, e), lay, e, dout, gr, dU);
  }
  stage2_summaries_backward(x, gamma, lay, dU, gr);
  if (!S0.empty()) initial_state_output_backward(x, S0, lay.t0, dout, gr, dS0);
  const Scalar dG_last = dF.empty() ? Scalar(0) : final_state_backward(x, S0, lay.t0, dF, gr, dS0);
  decay_gradient(x.lam, gr.dlam, x.v, gr.dv, dG_last, lay.t0 == 0, dg);
}

}  // namespace

template <class Scalar>
void chunked_forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                     TensorView<Scalar, 4> o, const StateIO<Scalar>& io) {
  check_chunk_size(opts.chunk_size);
  const Index t0 = check_initial_state(io.initial, in.v.shape[0], in.v.shape[2], in.q.shape[3],
                                       in.v.shape[3]);
  const AttentionDims d = check_inputs(in, t0);
  check_shape<4>("o", o.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  const Index C = chunk_size_for<Scalar>(opts.chunk_size, d);
  const ChunkLayout lay(d.T, t0, C);
  const std::vector<int> lut = level_table(C);
  prepare_final_state(d, io);
  for_each_head(d, [&](Index b, Index h) {
    const HeadInputs<Scalar> x = head_inputs(in, d, b, h);
    const auto S0 = head_levels(io.initial, b, h);
    chunked_forward_head(x, lay, lut, S0, slice_bt(o, b, h));
    if (io.final) set_head_levels(io.final->S, b, h, final_state(x, S0, t0));
  });
}

template <class Scalar>
void chunked_backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                      const StateIO<Scalar>& io, const Tensor<Scalar, 5>* d_final,
                      Tensor<Scalar, 5>* d_initial) {
  check_chunk_size(opts.chunk_size);
  const AttentionDims d = check_backward_arguments(in, dout, grads, io, d_final);
  const Index t0 = d.t0, C = chunk_size_for<Scalar>(opts.chunk_size, d);
  const Index L0 = t0 == 0 ? 0 : num_levels(t0);
  if (d_initial) *d_initial = Tensor<Scalar, 5>({d.B, d.H, L0, d.K, d.V});
  for (auto* p : {&grads.dq, &grads.dk, &grads.dv, &grads.dlam})
    std::fill(p->data, p->data + p->size(), Scalar(0));

  const ChunkLayout lay(d.T, t0, C);
  const std::vector<int> lut = level_table(C);
  for_each_head_shared_qk<Scalar>(d, grads.dq, grads.dk, [&](Index b, Index h,
                                                             MatrixMap<Scalar> dq_bh,
                                                             MatrixMap<Scalar> dk_bh) {
    const HeadInputs<Scalar> x = head_inputs(in, d, b, h);
    const auto S0 = head_levels(io.initial, b, h);
    const auto dF = d_final ? head_levels(*d_final, b, h) : std::vector<RowMatrix<Scalar>>{};
    std::vector<RowMatrix<Scalar>> dS0(S0.size(), RowMatrix<Scalar>::Zero(d.K, d.V));
    HeadGrads<Scalar> gr{dq_bh, dk_bh, slice_bt(grads.dv, b, h), slice_bt(grads.dlam, b, h)};
    chunked_backward_head(x, lay, lut, S0, dF, slice_bt(dout, b, h), gr, slice_bt(grads.dg, b, h),
                          dS0);
    if (d_initial) set_head_levels(*d_initial, b, h, dS0);
  });
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                          \
  template void chunked_forward<Scalar>(const AttentionInputs<Scalar>&, const ChunkedOptions&, \
                                        TensorView<Scalar, 4>, const StateIO<Scalar>&);      \
  template void chunked_backward<Scalar>(                                                      \
      const AttentionInputs<Scalar>&, const ChunkedOptions&, ConstTensorView<Scalar, 4>,       \
      const AttentionGrads<Scalar>&, const StateIO<Scalar>&, const Tensor<Scalar, 5>*,         \
      Tensor<Scalar, 5>*);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
