// Naive (materialised) form of log-linear Gated DeltaNet, SPEC.md §6: the definition the other
// Gated DeltaNet forms must match. O(T^2 (K+V)) for the masked products plus O(T^3) for the
// unit lower-triangular inverse, per head. Faster sibling: gdn_recurrent.hpp.
/// \file
/// \brief Naive (materialised) form of log-linear Gated DeltaNet (SPEC.md §6)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/gdn_inputs.hpp>

namespace loglinear {

/// (I + A)^{-1} for A strictly lower triangular, by forward substitution (SPEC.md §6's Tut).
///
/// Row t of the result is e_t - sum_{s<t} A_ts Tut_s (from (I + A) Tut = I read row by row), so
/// the inverse is exact to rounding with no pivoting; it is unit lower triangular. Only the
/// strictly lower triangle of A is read. Cost O(T^3).
/// @param A  [T, T]; its diagonal and upper triangle are ignored
/// @return   Tut = (I + A)^{-1}, [T, T], unit lower triangular
/// @throws std::invalid_argument "A: expected a square ..." if A is not square.
template <class Scalar>
RowMatrix<Scalar> unit_lower_inverse(const RowMatrix<Scalar>& A);

/// Backward of unit_lower_inverse (docs/backward.md eq. 23): given Tut = (I + A)^{-1} and
/// dTut = dL/dTut, returns dL/dA = -Tut^T dTut Tut^T restricted to the strict lower triangle
/// (the only free entries of A; the rest is zero). Only the lower triangle of dTut is read,
/// since the entries of Tut above the diagonal are structurally zero.
/// @param Tut   the forward's result, [T, T] unit lower triangular
/// @param dTut  gradient with respect to Tut, [T, T]
/// @return      dA, [T, T], strictly lower triangular
/// @throws std::invalid_argument "Tut, dTut: ..." unless both are [T, T] of one size.
template <class Scalar>
RowMatrix<Scalar> unit_lower_inverse_backward(const RowMatrix<Scalar>& Tut,
                                              const RowMatrix<Scalar>& dTut);

/// Naive Gated DeltaNet forward, SPEC.md §6, per (batch, head):
/// Akk_ts = beta_t (k_t . k_s) for t > s; Tut = (I + Akk)^{-1};
/// M = [tril(Q K^T) Tut] ⊙ W with W the Mamba-2 mask (lam_t[ell(t,s)] exp(G_t - G_s));
/// o = M diag(beta) v.
///
/// @param in  q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); beta [B,T,H] in [0, 1];
///            lam [B,T,H,L], L >= num_levels(T)
/// @param o   output [B,T,H,V], overwritten
/// @throws std::invalid_argument on bad shapes or values (see check_gdn_inputs), a wrong o
///         shape, or T x T work matrices that cannot fit in memory.
template <class Scalar>
void gdn_naive_forward(const GdnInputs<Scalar>& in, TensorView<Scalar, 4> o);

/// Naive Gated DeltaNet backward (docs/backward.md eqs. 19-24): from dout [B,T,H,V] computes
/// dq, dk (summed over the heads of each group), dv, dg, dbeta and dlam; overwrites `grads`.
/// Recomputes Tut, M from the inputs (nothing is cached by the forward).
/// @param in     the forward's inputs, as gdn_naive_forward
/// @param dout   dL/do [B,T,H,V]
/// @param grads  dq, dk [B,T,G,K]; dv [B,T,H,V]; dg, dbeta [B,T,H]; dlam [B,T,H,L], overwritten
/// @throws std::invalid_argument on bad shapes or values.
template <class Scalar>
void gdn_naive_backward(const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                        const GdnGrads<Scalar>& grads);

}  // namespace loglinear
