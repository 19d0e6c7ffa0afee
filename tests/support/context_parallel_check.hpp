// One context-parallel case checked against the single-process chunked call on the same inputs:
// the test of reference/loglinear/context_parallel/ over any Communicator (SelfCommunicator in the
// Catch2 suite, MPI in tests/mpi/). Every rank draws the whole sequence from the same seed,
// computes the reference itself, runs its segment through cp_forward / cp_backward and compares
// its slice of the outputs and gradients, the final state and the initial state's gradient.
#pragma once

#include "compare.hpp"
#include "random_inputs.hpp"
#include "segments.hpp"

#include <loglinear/attention/chunked.hpp>
#include <loglinear/context_parallel/context_parallel.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <vector>

namespace loglinear::test {

/// One case: sizes, chunk size, whether the call continues a state of `prefix` tokens (and gets a
/// gradient at its final state), and the seed.
struct CpCase {
  Sizes sizes;
  Index chunk = 64;
  Index prefix = 0;  ///< tokens of the initial state (0: no initial state, no d_final)
  std::uint64_t seed = 1;
};

inline std::string describe(const CpCase& c) {
  return describe(c.sizes) + " chunk=" + std::to_string(c.chunk) + " prefix=" + std::to_string(c.prefix) +
         " seed=" + std::to_string(c.seed);
}

template <class Scalar>
struct GradTensors {
  Tensor<Scalar, 4> dq, dk, dv, dlam;
  Tensor<Scalar, 3> dg;
  explicit GradTensors(const OwnedInputs<Scalar>& in)
      : dq(in.q.shape()), dk(in.k.shape()), dv(in.v.shape()), dlam(in.lam.shape()), dg(in.g.shape()) {}
  AttentionGrads<Scalar> view() { return {dq, dk, dv, dg, dlam}; }
};

/// Runs the case on this rank of `comm`; returns the comparisons of this rank's results with the
/// single-process reference (max relative error over each tensor).
/// `engine` runs the segments' chunked calls (nullptr: the CPU form; the reference is always the
/// CPU form in Scalar).
template <class Scalar>
std::vector<Comparison> check_context_parallel(const Communicator& comm, const CpCase& c,
                                               const ChunkedEngine<Scalar>* engine = nullptr) {
  Sizes s = c.sizes;
  const Index T = s.T, n0 = c.prefix;
  s.L = num_levels(n0 + T) + 1;
  const OwnedInputs<Scalar> in = random_inputs<Scalar>(s, c.seed);
  const ChunkedOptions opts{c.chunk};
  // The initial state: the final state of a random prefix of n0 tokens; a random d_final with it.
  FenwickState<Scalar> initial;
  Tensor<Scalar, 5> d_final;
  if (n0 > 0) {
    Sizes p = s;
    p.T = n0;
    const OwnedInputs<Scalar> pre = random_inputs<Scalar>(p, c.seed + 1000);
    Tensor<Scalar, 4> o_pre(pre.v.shape());
    chunked_forward<Scalar>(pre.view(), opts, o_pre, {nullptr, &initial});
    const OwnedInputs<Scalar> extra = random_inputs<Scalar>(p, c.seed + 2000);  // only for its values
    d_final = Tensor<Scalar, 5>({s.B, s.H, num_levels(n0 + T), s.K, s.V});
    for (Index i = 0; i < d_final.size(); ++i) d_final.data()[i] = extra.dout.data()[i % extra.dout.size()];
  }
  const FenwickState<Scalar>* init = n0 > 0 ? &initial : nullptr;
  const Tensor<Scalar, 5>* dfin = n0 > 0 ? &d_final : nullptr;

  // The reference: one chunked call over the whole sequence.
  Tensor<Scalar, 4> o_ref(in.v.shape());
  FenwickState<Scalar> final_ref;
  chunked_forward<Scalar>(in.view(), opts, o_ref, {init, &final_ref});
  GradTensors<Scalar> g_ref(in);
  Tensor<Scalar, 5> d_init_ref;
  chunked_backward<Scalar>(in.view(), opts, in.dout, g_ref.view(), {init, nullptr}, dfin, init ? &d_init_ref : nullptr);

  // This rank's segment through cp_forward / cp_backward.
  const Segment seg = cp_segment(T, effective_chunk_size(c.chunk, n0 + T), comm.size(), comm.rank());
  const OwnedInputs<Scalar> mine = slice_inputs(in, seg.begin, seg.end);
  Tensor<Scalar, 4> o(mine.v.shape());
  const CpContext<Scalar> ctx = cp_forward<Scalar>(comm, mine.view(), T, opts, o, init, engine);
  GradTensors<Scalar> g(mine);
  Tensor<Scalar, 5> d_init;
  cp_backward<Scalar>(comm, ctx, mine.view(), opts, mine.dout, g.view(), dfin, init ? &d_init : nullptr, engine);

  const auto part = [&](const auto& x) { return slice_t(x, seg.begin, seg.end); };
  std::vector<Comparison> out{compare("o", o, part(o_ref)),          compare("dq", g.dq, part(g_ref.dq)),
                              compare("dk", g.dk, part(g_ref.dk)),   compare("dv", g.dv, part(g_ref.dv)),
                              compare("dg", g.dg, part(g_ref.dg)),   compare("dlam", g.dlam, part(g_ref.dlam)),
                              compare("final state", ctx.final_state.S, final_ref.S)};
  if (init) out.push_back(compare("d_initial", d_init, d_init_ref));
  return out;
}

}  // namespace loglinear::test
