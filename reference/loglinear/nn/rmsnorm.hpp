// RMSNorm and the gated RMSNorm of the Mamba-2 mixer (SPEC.md §8), each a forward/backward pair
// in the llm.c style on row-major [N, d] activations (N = B*T). O(N d) both ways.
// LayerNorm, the toy model's norm, lives in models/layers.hpp.
/// \file
/// \brief RMSNorm and the gated RMSNorm of the Mamba-2 mixer (SPEC.md §8), each a forward/backward pair in the llm.c style on row-major [N, d] activations (N = ...
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear::nn {

/// What rmsnorm_backward needs from the forward.
template <class Scalar>
struct RmsNormCache {
  RowMatrix<Scalar> xhat;  ///< x * rstd per group, [N, d]
  RowMatrix<Scalar> rstd;  ///< 1 / sqrt(mean_group(x^2) + eps), [N, groups]
};

/// RMSNorm per group of d / groups features: y = x / sqrt(mean(x^2) + eps) * w.
/// @param x [N, d]; @param w [1, d]; @param groups divides d (1 = the plain RMSNorm);
/// @param eps 1e-5 as the fla config. @param cache overwritten with what rmsnorm_backward needs.
/// @return y [N, d].
/// @throws std::invalid_argument "w: ..." if w is not [1, d], "groups: ..." if it does not divide d.
template <class Scalar>
RowMatrix<Scalar> rmsnorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& w,
                                  RmsNormCache<Scalar>& cache, Index groups = 1, Scalar eps = Scalar(1e-5));

/// Backward of rmsnorm_forward: dw += sum_n dy xhat; RETURNS dx [N, d]
/// (dx = rstd (w dy - xhat mean_group(w dy xhat))).
template <class Scalar>
RowMatrix<Scalar> rmsnorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& w,
                                   const RmsNormCache<Scalar>& cache, RowMatrix<Scalar>& dw);

/// What gated_rmsnorm_backward needs from the forward.
template <class Scalar>
struct GatedRmsNormCache {
  RowMatrix<Scalar> x;        ///< the input x, [N, d]
  RowMatrix<Scalar> z;        ///< the gate input z, [N, d]
  RmsNormCache<Scalar> norm;  ///< the cache of the inner RMSNorm of x * SiLU(z)
};

/// Gated RMSNorm with norm_before_gate = False (SPEC.md §8): y = RMSNorm(x ⊙ SiLU(z)) * w.
/// @param x, z [N, d]; @param w [1, d]; @param groups, eps as rmsnorm_forward.
/// @param cache overwritten with what gated_rmsnorm_backward needs. @return y [N, d].
/// @throws std::invalid_argument "z: ..." if z's shape differs from x's, and as rmsnorm_forward.
template <class Scalar>
RowMatrix<Scalar> gated_rmsnorm_forward(const RowMatrix<Scalar>& x, const RowMatrix<Scalar>& z,
                                        const RowMatrix<Scalar>& w, GatedRmsNormCache<Scalar>& cache,
                                        Index groups = 1, Scalar eps = Scalar(1e-5));

/// Backward of gated_rmsnorm_forward: dw += ...; OVERWRITES dx and dz [N, d].
template <class Scalar>
void gated_rmsnorm_backward(const RowMatrix<Scalar>& dy, const RowMatrix<Scalar>& w,
                            const GatedRmsNormCache<Scalar>& cache, RowMatrix<Scalar>& dw,
                            RowMatrix<Scalar>& dx, RowMatrix<Scalar>& dz);

}  // namespace loglinear::nn
