// Token ranges [a, e) of operator tensors (dimension 1 is T), copied: the tests of context
// parallelism and of carried state cut one call's inputs into the segments of several calls, and
// paste the segments' outputs and gradients back.
#pragma once

#include "random_inputs.hpp"

#include <algorithm>

namespace loglinear::test {

/// Tokens [a, e) of a [B,T,...] tensor, as a new [B,e-a,...] tensor.
template <class Scalar, int Rank>
Tensor<Scalar, Rank> slice_t(const Tensor<Scalar, Rank>& x, Index a, Index e) {
  auto shape = x.shape();
  const Index T = shape[1], row = x.size() / (shape[0] * T);
  shape[1] = e - a;
  Tensor<Scalar, Rank> out(shape);
  for (Index b = 0; b < shape[0]; ++b)
    std::copy_n(x.data() + (b * T + a) * row, (e - a) * row, out.data() + b * (e - a) * row);
  return out;
}

/// Writes a [B,e-a,...] tensor into tokens [a, e) of a [B,T,...] one.
template <class Scalar, int Rank>
void paste_t(const Tensor<Scalar, Rank>& part, Index a, Tensor<Scalar, Rank>& x) {
  const auto& shape = x.shape();
  const Index T = shape[1], n = part.shape()[1], row = x.size() / (shape[0] * T);
  for (Index b = 0; b < shape[0]; ++b)
    std::copy_n(part.data() + b * n * row, n * row, x.data() + (b * T + a) * row);
}

/// The inputs' tokens [a, e) (dout too).
template <class Scalar>
OwnedInputs<Scalar> slice_inputs(const OwnedInputs<Scalar>& in, Index a, Index e) {
  return {slice_t(in.q, a, e), slice_t(in.k, a, e), slice_t(in.v, a, e), slice_t(in.lam, a, e),
          slice_t(in.g, a, e), slice_t(in.dout, a, e)};
}

}  // namespace loglinear::test
