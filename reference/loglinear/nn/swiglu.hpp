// The SwiGLU MLP of the Mamba-2 block (SPEC.md §8, fla GatedMLP): y = W_down (SiLU(W_gate x) ⊙ W_up x),
// bias-free, hidden = hidden_ratio * d. A forward/backward pair; O(N d hidden) matmuls.
/// \file
/// \brief The SwiGLU MLP of the Mamba-2 block (SPEC.md §8, fla GatedMLP)
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear::nn {

/// What swiglu_backward needs from the forward.
template <class Scalar>
struct SwiGluCache {
  RowMatrix<Scalar> x;     ///< input [N, d]
  RowMatrix<Scalar> gate;  ///< W_gate x, [N, hidden]
  RowMatrix<Scalar> up;    ///< W_up x, [N, hidden]
  RowMatrix<Scalar> h;     ///< SiLU(gate) ⊙ up, [N, hidden]
};

/// y = (SiLU(x W_gate^T) ⊙ x W_up^T) W_down^T.
/// @param x [N, d]; @param W_gate, W_up [hidden, d]; @param W_down [d, hidden].
/// @param cache overwritten with what swiglu_backward needs. @return y [N, d].
/// @throws std::invalid_argument naming W_gate, W_up or W_down if a shape disagrees.
template <class Scalar>
RowMatrix<Scalar> swiglu_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& W_gate,
                                 const RowMatrix<Scalar>& W_up, const RowMatrix<Scalar>& W_down,
                                 SwiGluCache<Scalar>& cache);

/// Backward of swiglu_forward: ADDS into dW_gate, dW_up, dW_down; RETURNS dx [N, d].
template <class Scalar>
RowMatrix<Scalar> swiglu_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& W_gate,
                                  const RowMatrix<Scalar>& W_up, const RowMatrix<Scalar>& W_down,
                                  const SwiGluCache<Scalar>& cache, RowMatrix<Scalar>& dW_gate,
                                  RowMatrix<Scalar>& dW_up, RowMatrix<Scalar>& dW_down);

}  // namespace loglinear::nn
