// Context parallelism over a Communicator (docs/context_parallel.md): the segment split, the
// Fenwick transition and its transpose, and the forward / backward folds. Every collective starts
// with one all-gather of a fixed-size header carrying each rank's sizes and any error it found,
// so a bad argument on one rank is an exception on every rank, never a rank left waiting.
#include <loglinear/context_parallel/context_parallel.hpp>

#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/recurrent.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace loglinear {

Segment cp_segment(Index T, Index C, int R, int r) {
  if (T < 1) throw std::invalid_argument("T: expected a call of >= 1 tokens, got " + std::to_string(T));
  check_chunk_size(C);
  if (R < 1) throw std::invalid_argument("R: expected >= 1 ranks, got " + std::to_string(R));
  if (r < 0 || r >= R) {
    throw std::invalid_argument("r: expected a rank in [0, " + std::to_string(R) + "), got " + std::to_string(r));
  }
  const Index N = (T + C - 1) / C;  // T <= 2^62 after the callers' checks; C >= 1
  const auto first_chunk = [&](Index rank) { return static_cast<Index>((static_cast<__int128>(rank) * N) / R); };
  return {std::min(T, first_chunk(r) * C), std::min(T, first_chunk(r + 1) * C)};
}

namespace {

// Levels of a state after n tokens: none before the first token.
int state_levels(Index n) { return n == 0 ? 0 : num_levels(n); }

template <class Scalar>
FenwickState<Scalar> zero_state(Index tokens, Index B, Index H, Index K, Index V) {
  return {tokens, Tensor<Scalar, 5>({B, H, state_levels(tokens), K, V})};
}

// The K x V block of level l, head (b, h), of a [B,H,L,K,V] tensor.
template <class T5>
auto* block(T5& S, Index b, Index h, Index l) {
  const auto& s = S.shape();
  return S.data() + ((b * s[1] + h) * s[2] + l) * s[3] * s[4];
}

// The fixed-size record every rank all-gathers first: its sizes, a checksum of what must be the
// same on every rank, and the first error it found (empty if none).
struct Header {
  std::int64_t fields[12];
  double checksum;
  char error[400];
};

// What each rank reports: fields[i] must agree across ranks for i < kShared.
enum Field { kB, kG, kH, kK, kV, kL, kT, kChunk, kTokens0, kShared, kSegment = kShared, kUnused1, kUnused2 };
const char* const kFieldNames[kShared] = {"B", "G", "H", "K", "V", "L (lam's levels)", "T", "the chunk size",
                                          "the initial state's token count"};

// All-gathers the headers and turns any rank's error, or any disagreement, into the same exception
// on every rank. Returns every rank's header.
std::vector<Header> agree(const Communicator& comm, Header mine, const char* what) {
  std::vector<Header> all(static_cast<size_t>(comm.size()));
  comm.allgather(&mine, sizeof(Header), all.data());
  for (int j = 0; j < comm.size(); ++j) {
    if (all[static_cast<size_t>(j)].error[0] != '\0') {
      throw std::invalid_argument(std::string(what) + ": rank " + std::to_string(j) + ": " +
                                  all[static_cast<size_t>(j)].error);
    }
  }
  for (int j = 1; j < comm.size(); ++j) {
    const Header& a = all[0];
    const Header& h = all[static_cast<size_t>(j)];
    for (int f = 0; f < kShared; ++f) {
      if (a.fields[f] != h.fields[f]) {
        throw std::invalid_argument(std::string(what) + ": the ranks disagree on " + kFieldNames[f] + ": rank 0 has " +
                                    std::to_string(a.fields[f]) + ", rank " + std::to_string(j) + " has " +
                                    std::to_string(h.fields[f]) + " (every rank passes the same call)");
      }
    }
    if (!(a.checksum == h.checksum) && !(std::isnan(a.checksum) && std::isnan(h.checksum))) {
      throw std::invalid_argument(std::string(what) + ": rank " + std::to_string(j) +
                                  " holds another initial state or d_final than rank 0 (their sums differ: every "
                                  "rank passes the same one)");
    }
  }
  return all;
}

void set_error(Header& h, const std::string& msg) {
  std::strncpy(h.error, msg.c_str(), sizeof(h.error) - 1);
  h.error[sizeof(h.error) - 1] = '\0';
}

template <class Scalar, int Rank>
double sum_of(const Tensor<Scalar, Rank>& t) {
  double s = 0;
  for (Index i = 0; i < t.size(); ++i) s += static_cast<double>(t.data()[i]) * static_cast<double>(1 + i % 7);
  return s;
}

// This rank's sizes from its segment's shapes (an empty segment has shapes too).
template <class Scalar>
void fill_sizes(Header& h, const AttentionInputs<Scalar>& seg, Index T, Index C, Index t0) {
  h.fields[kB] = seg.q.shape[0];
  h.fields[kG] = seg.q.shape[2];
  h.fields[kH] = seg.v.shape[2];
  h.fields[kK] = seg.q.shape[3];
  h.fields[kV] = seg.v.shape[3];
  h.fields[kL] = seg.lam.shape[3];
  h.fields[kT] = T;
  h.fields[kChunk] = C;
  h.fields[kTokens0] = t0;
  h.fields[kSegment] = seg.q.shape[1];
}

// Checks this rank's segment; returns the clamped chunk size and its segment. Throws on a bad one.
template <class Scalar>
Segment check_segment(const Communicator& comm, const AttentionInputs<Scalar>& seg, Index T,
                      const ChunkedOptions& opts, Index n0, Index* chunk) {
  if (T < 1 || T > (Index{1} << 62)) {
    throw std::invalid_argument("T: expected the whole call's token count in [1, 2^62], got " + std::to_string(T));
  }
  check_chunk_size(opts.chunk_size);
  *chunk = effective_chunk_size(opts.chunk_size, n0 + T);
  const Segment s = cp_segment(T, *chunk, comm.size(), comm.rank());
  const Index n = s.end - s.begin;
  if (seg.q.shape[1] != n) {
    throw std::invalid_argument("q: expected this rank's segment of the call, tokens [" + std::to_string(s.begin) +
                                ", " + std::to_string(s.end) + ") = " + std::to_string(n) + " tokens (cp_segment of T = " +
                                std::to_string(T) + ", chunk " + std::to_string(*chunk) + ", " +
                                std::to_string(comm.size()) + " ranks), got T = " + std::to_string(seg.q.shape[1]));
  }
  if (n > 0) check_inputs(seg, n0 + s.begin);
  return s;
}

}  // namespace

template <class Scalar>
void fenwick_transition(const FenwickState<Scalar>& in, ConstTensorView<Scalar, 2> log_decay,
                        FenwickState<Scalar>& out) {
  const Index n = in.tokens, n_out = out.tokens;
  if (n == 0) return;
  const auto& s = in.S.shape();
  const Index B = s[0], H = s[1], KV = s[3] * s[4];
  auto& S_out = out.S;
  for (const Bucket& bucket : buckets(n - 1)) {
    const int m = level(n_out - 1, bucket.begin);  // where this whole bucket sits at n_out - 1
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h) {
        const Scalar scale = std::exp(log_decay(b, h));
        const Scalar* src = block(in.S, b, h, bucket.level);
        Scalar* dst = block(S_out, b, h, m);
        for (Index i = 0; i < KV; ++i) dst[i] += scale * src[i];
      }
  }
}

template <class Scalar>
void fenwick_transition_transpose(const Tensor<Scalar, 5>& d_out, Index n_in, Index n_out,
                                  ConstTensorView<Scalar, 2> log_decay, Tensor<Scalar, 5>& d_in) {
  if (n_in == 0) return;
  const auto& s = d_out.shape();
  const Index B = s[0], H = s[1], KV = s[3] * s[4];
  for (const Bucket& bucket : buckets(n_in - 1)) {
    const int m = level(n_out - 1, bucket.begin);
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h) {
        const Scalar scale = std::exp(log_decay(b, h));
        const Scalar* src = block(d_out, b, h, m);
        Scalar* dst = block(d_in, b, h, bucket.level);
        for (Index i = 0; i < KV; ++i) dst[i] += scale * src[i];
      }
  }
}

namespace {

// The levels [0, levels) of every head of a state, into a zero-padded [B,H,Lmax,K,V] block.
template <class Scalar>
void pack(const Tensor<Scalar, 5>& S, Index Lmax, Scalar* out) {
  const auto& s = S.shape();
  const Index KV = s[3] * s[4];
  for (Index b = 0; b < s[0]; ++b)
    for (Index h = 0; h < s[1]; ++h)
      for (Index l = 0; l < s[2]; ++l) std::copy_n(block(S, b, h, l), KV, out + ((b * s[1] + h) * Lmax + l) * KV);
}

// Adds levels [0, S's levels) of a padded block to S.
template <class Scalar>
void add_unpacked(const Scalar* in, Index Lmax, Tensor<Scalar, 5>& S) {
  const auto& s = S.shape();
  const Index KV = s[3] * s[4];
  for (Index b = 0; b < s[0]; ++b)
    for (Index h = 0; h < s[1]; ++h)
      for (Index l = 0; l < s[2]; ++l) {
        const Scalar* src = in + ((b * s[1] + h) * Lmax + l) * KV;
        Scalar* dst = block(S, b, h, l);
        for (Index i = 0; i < KV; ++i) dst[i] += src[i];
      }
}

}  // namespace

template <class Scalar>
void CpuChunkedEngine<Scalar>::forward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                                       TensorView<Scalar, 4> o, const FenwickState<Scalar>* initial,
                                       FenwickState<Scalar>* final) const {
  chunked_forward<Scalar>(in, opts, o, {initial, final});
}

template <class Scalar>
void CpuChunkedEngine<Scalar>::backward(const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                                        ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                                        const FenwickState<Scalar>* initial, const Tensor<Scalar, 5>* d_final,
                                        Tensor<Scalar, 5>* d_initial) const {
  chunked_backward<Scalar>(in, opts, dout, grads, {initial, nullptr}, d_final, d_initial);
}

template <class Scalar>
CpContext<Scalar> cp_forward(const Communicator& comm, const AttentionInputs<Scalar>& seg, Index T,
                             const ChunkedOptions& opts, TensorView<Scalar, 4> o, const FenwickState<Scalar>* initial,
                             const ChunkedEngine<Scalar>* engine) {
  const CpuChunkedEngine<Scalar> cpu;
  const ChunkedEngine<Scalar>& run = engine ? *engine : cpu;
  const int R = comm.size(), r = comm.rank();
  Header mine{};
  CpContext<Scalar> ctx;
  Index C = 0, n0 = 0;
  try {
    n0 = initial ? initial->tokens : 0;
    ctx.segment = check_segment(comm, seg, T, opts, n0, &C);
    fill_sizes(mine, seg, T, C, n0);
    const Index B = seg.q.shape[0], H = seg.v.shape[2], K = seg.q.shape[3], V = seg.v.shape[3];
    check_initial_state(initial, B, H, K, V);
    check_shape<4>("o", o.shape, {B, seg.q.shape[1], H, V}, " = [B,n_r,H,V] (this rank's segment)");
    mine.checksum = initial ? sum_of(initial->S) : 0.0;
  } catch (const std::invalid_argument& e) {
    set_error(mine, e.what());
  }
  agree(comm, mine, "cp_forward");
  const Index B = mine.fields[kB], H = mine.fields[kH], K = mine.fields[kK], V = mine.fields[kV];
  const Index n = ctx.segment.end - ctx.segment.begin, t0 = n0 + ctx.segment.begin;
  ctx.B = B, ctx.H = H, ctx.K = K, ctx.V = V;
  for (int j = 0; j <= R; ++j) ctx.starts.push_back(n0 + (j < R ? cp_segment(T, C, R, j).begin : T));

  // This segment's contribution (its final state from zero at t0, eq. 4) and decay.
  const Index Lmax = num_levels(n0 + T), state_size = B * H * Lmax * K * V, blk = state_size + B * H;
  std::vector<Scalar> send(static_cast<size_t>(blk), Scalar(0));
  Scalar* decay = send.data() + state_size;
  for (Index b = 0; b < B; ++b)
    for (Index t = 0; t < n; ++t)
      for (Index h = 0; h < H; ++h) decay[b * H + h] += seg.g(b, t, h);
  if (n > 0) {
    const FenwickState<Scalar> zero = zero_state<Scalar>(t0, B, H, K, V);
    FenwickState<Scalar> contribution;
    run.forward(seg, opts, o, &zero, &contribution);
    pack(contribution.S, Lmax, send.data());
  }
  std::vector<Scalar> all(static_cast<size_t>(blk * R));
  comm.allgather(send.data(), sizeof(Scalar) * static_cast<size_t>(blk), all.data());

  // The fold (eq. 5): S_in(0) = the initial state; S_in(j+1) = transition_j(S_in(j)) + C_j.
  FenwickState<Scalar> S = initial ? *initial : zero_state<Scalar>(n0, B, H, K, V);
  for (int j = 0; j < R; ++j) {
    const Scalar* block_j = all.data() + j * blk;
    ctx.log_decays.insert(ctx.log_decays.end(), block_j + state_size, block_j + blk);
    if (j == r) ctx.incoming = S;
    FenwickState<Scalar> next = zero_state<Scalar>(ctx.starts[static_cast<size_t>(j) + 1], B, H, K, V);
    fenwick_transition<Scalar>(S, {block_j + state_size, {B, H}}, next);
    add_unpacked(block_j, Lmax, next.S);
    S = std::move(next);
  }
  ctx.final_state = std::move(S);
  if (n > 0) run.forward(seg, opts, o, &ctx.incoming, nullptr);
  return ctx;
}

template <class Scalar>
void cp_backward(const Communicator& comm, const CpContext<Scalar>& ctx, const AttentionInputs<Scalar>& seg,
                 const ChunkedOptions& opts, ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                 const Tensor<Scalar, 5>* d_final, Tensor<Scalar, 5>* d_initial, const ChunkedEngine<Scalar>* engine) {
  const CpuChunkedEngine<Scalar> cpu;
  const ChunkedEngine<Scalar>& run = engine ? *engine : cpu;
  const int R = comm.size(), r = comm.rank();
  const Index B = ctx.B, H = ctx.H, K = ctx.K, V = ctx.V;
  const Index n = ctx.segment.end - ctx.segment.begin, n0 = ctx.starts.front(), t_end = ctx.starts.back();
  Header mine{};
  try {
    if (static_cast<int>(ctx.starts.size()) != R + 1 || seg.q.shape[1] != n) {
      throw std::invalid_argument("ctx: expected the CpContext that cp_forward returned on this rank for this segment");
    }
    fill_sizes(mine, seg, t_end - n0, 0, n0);
    check_shape<4>("dout", dout.shape, {B, n, H, V}, " = [B,n_r,H,V] (this rank's segment)");
    if (n > 0) check_finite<Scalar, 4>("dout", dout);
    if (d_final) {
      check_shape<5>("d_final", d_final->shape(), {B, H, state_levels(t_end), K, V},
                     " = [B,H,num_levels(t0 + T),K,V] (the final state's shape)");
      mine.checksum = sum_of(*d_final);
    }
  } catch (const std::invalid_argument& e) {
    set_error(mine, e.what());
  }
  agree(comm, mine, "cp_backward");

  // The gradient at this segment's incoming state from its own outputs alone (A_r of eq. 7, no
  // gradient arriving at its end); grads is its scratch here and is overwritten below.
  const Index Lmax = num_levels(t_end), state_size = B * H * Lmax * K * V;
  std::vector<Scalar> send(static_cast<size_t>(state_size), Scalar(0));
  if (n > 0) {
    Tensor<Scalar, 5> own;
    run.backward(seg, opts, dout, grads, &ctx.incoming, nullptr, &own);
    pack(own, Lmax, send.data());
  }
  std::vector<Scalar> all(static_cast<size_t>(state_size * R));
  comm.allgather(send.data(), sizeof(Scalar) * static_cast<size_t>(state_size), all.data());

  // The reverse fold (eq. 8): dS_out(R-1) = d_final; dS_in(j) = transition_j^T dS_out(j) + A_j;
  // dS_out(j-1) = dS_in(j). Every rank folds all R, so every rank also has dS_in(0).
  Tensor<Scalar, 5> D = d_final ? *d_final : Tensor<Scalar, 5>({B, H, state_levels(t_end), K, V});
  Tensor<Scalar, 5> d_out_mine;
  for (int j = R - 1; j >= 0; --j) {
    if (j == r) d_out_mine = D;
    const Index a = ctx.starts[static_cast<size_t>(j)], e = ctx.starts[static_cast<size_t>(j) + 1];
    Tensor<Scalar, 5> d_in({B, H, state_levels(a), K, V});
    fenwick_transition_transpose<Scalar>(D, a, e, {ctx.log_decays.data() + j * B * H, {B, H}}, d_in);
    add_unpacked(all.data() + j * state_size, Lmax, d_in);
    D = std::move(d_in);
  }
  if (d_initial) *d_initial = std::move(D);
  if (n > 0) run.backward(seg, opts, dout, grads, &ctx.incoming, &d_out_mine, nullptr);
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                                              \
  template void fenwick_transition<Scalar>(const FenwickState<Scalar>&, ConstTensorView<Scalar, 2>,                \
                                           FenwickState<Scalar>&);                                                 \
  template void fenwick_transition_transpose<Scalar>(const Tensor<Scalar, 5>&, Index, Index,                       \
                                                     ConstTensorView<Scalar, 2>, Tensor<Scalar, 5>&);              \
  template CpContext<Scalar> cp_forward<Scalar>(const Communicator&, const AttentionInputs<Scalar>&, Index,        \
                                                const ChunkedOptions&, TensorView<Scalar, 4>,                      \
                                                const FenwickState<Scalar>*, const ChunkedEngine<Scalar>*);        \
  template void cp_backward<Scalar>(const Communicator&, const CpContext<Scalar>&, const AttentionInputs<Scalar>&, \
                                    const ChunkedOptions&, ConstTensorView<Scalar, 4>,                             \
                                    const AttentionGrads<Scalar>&, const Tensor<Scalar, 5>*, Tensor<Scalar, 5>*, \
                                    const ChunkedEngine<Scalar>*);                                                 \
  template class CpuChunkedEngine<Scalar>;
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear
