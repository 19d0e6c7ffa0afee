// Gradient checks of the attention operator's inputs (q, k, v, g, lam) with the settings every
// attention test uses, so that a test states only its loss and its bound.
#pragma once

#include "gradcheck.hpp"
#include "random_inputs.hpp"

#include <loglinear/core/inputs.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace loglinear::test {

/// One tensor with the attention tests' settings: eps 1e-5 (central differences' O(eps^2)
/// truncation and O(1e-16 / eps) rounding both sit near 1e-10 relative, far below the 1e-6
/// bound), floor 1e-3 of the tensor's largest gradient, tensors of up to kCheckAllUpTo elements
/// in full and larger ones on 48 elements sampled from `seed` (the case's printed seed, so every
/// run looks at other elements and a failure can be replayed). x is restored afterwards.
template <class Loss>
GradCheck gradcheck_attention_tensor(const std::string& name, double* x, const double* analytic, Index n,
                                     Loss&& loss, std::uint64_t seed) {
  return gradcheck(name, x, analytic, n, loss, 1e-5, 48, seed, 1e-3, kCheckAllUpTo);
}

/// dq, dk, dv, dg and dlam of `gr` against central differences of `loss()` w.r.t. in.q, in.k,
/// in.v, in.g and in.lam (each restored afterwards), in that order. The caller CHECKs each
/// result's max_rel against its bound and may append checks of further inputs (e.g. a start
/// state) made with gradcheck_attention_tensor.
template <class Loss>
std::vector<GradCheck> gradcheck_attention(OwnedInputs<double>& in, const AttentionGradTensors<double>& gr,
                                           Loss&& loss, std::uint64_t seed) {
  return {gradcheck_attention_tensor("dq", in.q.data(), gr.dq.data(), in.q.size(), loss, seed),
          gradcheck_attention_tensor("dk", in.k.data(), gr.dk.data(), in.k.size(), loss, seed),
          gradcheck_attention_tensor("dv", in.v.data(), gr.dv.data(), in.v.size(), loss, seed),
          gradcheck_attention_tensor("dg", in.g.data(), gr.dg.data(), in.g.size(), loss, seed),
          gradcheck_attention_tensor("dlam", in.lam.data(), gr.dlam.data(), in.lam.size(), loss, seed)};
}

}  // namespace loglinear::test
