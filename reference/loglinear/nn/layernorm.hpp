// LayerNorm over the last axis with scale and shift (the task model's post-norm, SPEC.md §8 last
// paragraph), a forward/backward pair on row-major [N, d] activations. O(N d) both ways.
// nn/rmsnorm.hpp is the Mamba-2 LM's scale-only sibling.
/// \file
/// \brief LayerNorm over the last axis with scale and shift (the task model's post-norm, SPEC.md §8 last paragraph), a forward/backward pair on row-major [N, ...
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear::nn {

/// What layernorm_backward needs from the forward.
template <class Scalar>
struct LayerNormCache {
  RowMatrix<Scalar> xhat;  ///< (x - mean) * rstd, [N, d]
  Vector<Scalar> rstd;     ///< 1 / sqrt(var + eps), [N]
};

/// LayerNorm over the last axis: y = (x - mean) / sqrt(var + eps) * gamma + beta, eps = 1e-5.
/// @param x [N, d]  @param gamma, beta [1, d]
/// @param cache overwritten with what layernorm_backward needs.  @return y [N, d].
template <class Scalar>
RowMatrix<Scalar> layernorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& gamma,
                                    const RowMatrix<Scalar>& beta, LayerNormCache<Scalar>& cache);
/// Backward of layernorm_forward: dgamma += sum_n dy xhat, dbeta += sum_n dy (ADDED); RETURNS dx.
template <class Scalar>
RowMatrix<Scalar> layernorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& gamma,
                                     const LayerNormCache<Scalar>& cache, RowMatrix<Scalar>& dgamma,
                                     RowMatrix<Scalar>& dbeta);

}  // namespace loglinear::nn
