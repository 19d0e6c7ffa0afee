// Variable-length batches (see varlen.hpp): validates the packed layout once, then hands each
// sequence's token range, a view into the packed [1,T,...] tensors (with B = 1 the tokens
// [a, b) are one contiguous block), to the unchanged form.
#include <loglinear/attention/varlen.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace loglinear {

namespace {

// The tokens [begin, begin + n) of a [1,T,...] tensor as a [1,n,...] view (same strides).
template <class T, int Rank>
TensorView<T, Rank> token_range(TensorView<T, Rank> t, Index begin, Index n) {
  Index per_token = 1;
  for (int i = 2; i < Rank; ++i) per_token *= t.shape[i];
  TensorView<T, Rank> out{t.data + begin * per_token, t.shape};
  out.shape[1] = n;
  return out;
}

template <class Scalar>
AttentionInputs<Scalar> token_range(const AttentionInputs<Scalar>& in, Index begin, Index n) {
  return {token_range(in.q, begin, n), token_range(in.k, begin, n), token_range(in.v, begin, n),
          token_range(in.g, begin, n), token_range(in.lam, begin, n)};
}

template <class Scalar>
AttentionGrads<Scalar> token_range(const AttentionGrads<Scalar>& gr, Index begin, Index n) {
  return {token_range(gr.dq, begin, n), token_range(gr.dk, begin, n),
          token_range(gr.dv, begin, n), token_range(gr.dg, begin, n),
          token_range(gr.dlam, begin, n)};
}

// B = 1 and q's T for a packed argument, before any view into it is taken.
template <int Rank>
void check_packed(const std::string& name, const Shape<Rank>& shape, Index T) {
  if (shape[0] != 1 || shape[1] != T) {
    throw std::invalid_argument(name + ": expected B = 1 and T = " + std::to_string(T) +
                                " (as q) with cu_seqlens, got shape " + shape_string<Rank>(shape));
  }
}

// Runs `call(i, begin, n)` for every sequence i; an error of the form is re-thrown with the
// sequence it came from (its message still starts with the argument's name; flat indices are
// then relative to that sequence's slice).
template <class Call>
void for_each_sequence(ConstTensorView<Index, 1> cu, Call&& call) {
  for (Index i = 0; i + 1 < cu.shape[0]; ++i) {
    try {
      call(i, cu.data[i], cu.data[i + 1] - cu.data[i]);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(e.what()) + " (in sequence " + std::to_string(i) +
                                  ", tokens [" + std::to_string(cu.data[i]) + ", " +
                                  std::to_string(cu.data[i + 1]) + ") of cu_seqlens)");
    }
  }
}

template <class Scalar>
AttentionDims packed_dims(const AttentionInputs<Scalar>& in) {
  AttentionDims d;
  d.B = 1;
  d.T = in.q.shape[1];
  d.G = in.q.shape[2];
  d.K = in.q.shape[3];
  d.H = in.v.shape[2];
  d.V = in.v.shape[3];
  d.L = in.lam.shape[3];
  return d;
}

// The number of sequences S of validated offsets.
Index sequence_count(ConstTensorView<Index, 1> cu) { return cu.shape[0] - 1; }

// Refuses a per-sequence list whose size is not S, and any state with the naive form.
template <class Scalar>
void check_state_request(Form form, ConstTensorView<Index, 1> cu, const VarlenStateIO<Scalar>& io,
                         const std::vector<Tensor<Scalar, 5>>* d_final,
                         const std::vector<Tensor<Scalar, 5>>* d_initial) {
  const Index S = sequence_count(cu);
  if (io.initial && Index(io.initial->size()) != S) {
    throw std::invalid_argument("initial_state: expected one state per sequence (S = " +
                                std::to_string(S) + " from cu_seqlens), got " +
                                std::to_string(io.initial->size()));
  }
  if (d_final && Index(d_final->size()) != S) {
    throw std::invalid_argument("d_final: expected one gradient per sequence (S = " +
                                std::to_string(S) + " from cu_seqlens), got " +
                                std::to_string(d_final->size()));
  }
  if (form == Form::naive) {
    for (auto [name, given] : {std::pair{"initial_state", io.initial != nullptr},
                               {"final_state", io.final != nullptr},
                               {"d_final", d_final != nullptr},
                               {"d_initial", d_initial != nullptr}}) {
      if (given) {
        throw std::invalid_argument(std::string(name) +
                                    ": expected no state with the naive form (it has none; use "
                                    "recurrent or chunked), got one");
      }
    }
  }
}

// Sequence i's part of a state request.
template <class Scalar>
StateIO<Scalar> sequence_state(const VarlenStateIO<Scalar>& io, Index i) {
  return {io.initial ? &(*io.initial)[size_t(i)] : nullptr,
          io.final ? &(*io.final)[size_t(i)] : nullptr};
}

// One sequence through its form, with its state (the naive form never gets one, see
// check_state_request).
template <class Scalar>
void forward_sequence(Form form, const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                      TensorView<Scalar, 4> o, const StateIO<Scalar>& io) {
  switch (form) {
    case Form::naive: return naive_forward(in, o);
    case Form::recurrent: return recurrent_forward(in, o, io);
    case Form::chunked: return chunked_forward(in, opts, o, io);
  }
}

template <class Scalar>
void backward_sequence(Form form, const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
                       ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads,
                       const StateIO<Scalar>& io, const Tensor<Scalar, 5>* d_final,
                       Tensor<Scalar, 5>* d_initial) {
  switch (form) {
    case Form::naive: return naive_backward(in, dout, grads);
    case Form::recurrent: return recurrent_backward(in, dout, grads, io, d_final, d_initial);
    case Form::chunked: return chunked_backward(in, opts, dout, grads, io, d_final, d_initial);
  }
}

}  // namespace

template <class Scalar>
Index check_varlen(const AttentionInputs<Scalar>& in, ConstTensorView<Index, 1> cu) {
  if (in.q.shape[0] != 1) {
    throw std::invalid_argument("q: expected B = 1 with cu_seqlens (the sequences packed along T), "
                                "got B = " + std::to_string(in.q.shape[0]));
  }
  const Index T = in.q.shape[1];
  const Index n = cu.shape[0];
  if (n < 2) {
    throw std::invalid_argument("cu_seqlens: expected S+1 >= 2 offsets (S >= 1 sequences), got " +
                                std::to_string(n));
  }
  if (cu.data == nullptr) throw std::invalid_argument("cu_seqlens: expected data, got null");
  if (cu.data[0] != 0) {
    throw std::invalid_argument("cu_seqlens: expected cu_seqlens[0] = 0, got " +
                                std::to_string(cu.data[0]));
  }
  Index longest = 0;
  for (Index i = 0; i + 1 < n; ++i) {
    if (cu.data[i + 1] <= cu.data[i]) {
      throw std::invalid_argument(
          "cu_seqlens: expected strictly increasing offsets (no empty sequence), got "
          "cu_seqlens[" + std::to_string(i) + "] = " + std::to_string(cu.data[i]) +
          ", cu_seqlens[" + std::to_string(i + 1) + "] = " + std::to_string(cu.data[i + 1]));
    }
    longest = std::max(longest, cu.data[i + 1] - cu.data[i]);
  }
  if (cu.data[n - 1] != T) {
    throw std::invalid_argument("cu_seqlens: expected the last offset cu_seqlens[" +
                                std::to_string(n - 1) + "] to equal q's T = " + std::to_string(T) +
                                ", got " + std::to_string(cu.data[n - 1]));
  }
  check_packed<4>("k", in.k.shape, T);
  check_packed<4>("v", in.v.shape, T);
  check_packed<3>("g", in.g.shape, T);
  check_packed<4>("lam", in.lam.shape, T);
  const int levels = num_levels(longest);
  if (in.lam.shape[3] < levels) {
    throw std::invalid_argument("lam: expected L >= num_levels(" + std::to_string(longest) +
                                ") = " + std::to_string(levels) +
                                " levels (the longest sequence of cu_seqlens), got L = " +
                                std::to_string(in.lam.shape[3]));
  }
  return longest;
}

template <class Scalar>
void forward_varlen(Form form, const AttentionInputs<Scalar>& in, ConstTensorView<Index, 1> cu,
                    const ChunkedOptions& opts, TensorView<Scalar, 4> o,
                    const VarlenStateIO<Scalar>& io) {
  check_varlen(in, cu);
  const AttentionDims d = packed_dims(in);
  check_shape<4>("o", o.shape, {1, d.T, d.H, d.V}, " = [1,T,H,V]");
  check_state_request<Scalar>(form, cu, io, nullptr, nullptr);
  // Final states are collected apart and moved out at the end, so that io.final may be the
  // vector io.initial points to (continuing in place), and is untouched if a sequence throws.
  std::vector<FenwickState<Scalar>> finals(io.final ? size_t(sequence_count(cu)) : 0);
  const VarlenStateIO<Scalar> request{io.initial, io.final ? &finals : nullptr};
  for_each_sequence(cu, [&](Index i, Index begin, Index n) {
    forward_sequence<Scalar>(form, token_range(in, begin, n), opts, token_range(o, begin, n),
                             sequence_state(request, i));
  });
  if (io.final) *io.final = std::move(finals);
}

template <class Scalar>
void backward_varlen(Form form, const AttentionInputs<Scalar>& in, ConstTensorView<Index, 1> cu,
                     const ChunkedOptions& opts, ConstTensorView<Scalar, 4> dout,
                     const AttentionGrads<Scalar>& grads, const VarlenStateIO<Scalar>& io,
                     const std::vector<Tensor<Scalar, 5>>* d_final,
                     std::vector<Tensor<Scalar, 5>>* d_initial) {
  check_varlen(in, cu);
  const AttentionDims d = packed_dims(in);
  check_shape<4>("dout", dout.shape, {1, d.T, d.H, d.V}, " = [1,T,H,V]");
  check_grads(grads, d);
  check_state_request<Scalar>(form, cu, io, d_final, d_initial);
  // The forward's final states are not written again: the backward only reads the request.
  // d_initial is collected apart and moved out at the end, as the forward's final states.
  const VarlenStateIO<Scalar> read_only{io.initial, nullptr};
  std::vector<Tensor<Scalar, 5>> d_initials(d_initial ? size_t(sequence_count(cu)) : 0);
  for_each_sequence(cu, [&](Index i, Index begin, Index n) {
    backward_sequence<Scalar>(form, token_range(in, begin, n), opts, token_range(dout, begin, n),
                              token_range(grads, begin, n), sequence_state(read_only, i),
                              d_final ? &(*d_final)[size_t(i)] : nullptr,
                              d_initial ? &d_initials[size_t(i)] : nullptr);
  });
  if (d_initial) *d_initial = std::move(d_initials);
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                          \
  template Index check_varlen<Scalar>(const AttentionInputs<Scalar>&, ConstTensorView<Index, 1>); \
  template void forward_varlen<Scalar>(Form, const AttentionInputs<Scalar>&,                   \
                                       ConstTensorView<Index, 1>, const ChunkedOptions&,       \
                                       TensorView<Scalar, 4>, const VarlenStateIO<Scalar>&);   \
  template void backward_varlen<Scalar>(Form, const AttentionInputs<Scalar>&,                  \
                                        ConstTensorView<Index, 1>, const ChunkedOptions&,      \
                                        ConstTensorView<Scalar, 4>,                            \
                                        const AttentionGrads<Scalar>&,                         \
                                        const VarlenStateIO<Scalar>&,                          \
                                        const std::vector<Tensor<Scalar, 5>>*,                 \
                                        std::vector<Tensor<Scalar, 5>>*);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
