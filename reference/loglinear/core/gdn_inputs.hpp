// The arguments of the log-linear Gated DeltaNet operator (SPEC.md §6): the Mamba-2 operator's
// bundle (inputs.hpp) plus the write strength beta [B,T,H], and the gradients plus dbeta.
// Derived from the Mamba-2 structs rather than repeating them, so that every shape check, slice
// helper and test helper written for q, k, v, g, lam applies to a GdnInputs unchanged.
/// \file
/// \brief The arguments of the log-linear Gated DeltaNet operator (SPEC.md §6)
/// \ingroup floor_core
#pragma once

#include <loglinear/core/inputs.hpp>

namespace loglinear {

/// Read-only inputs of the log-linear Gated DeltaNet operator (SPEC.md §6).
///
/// The AttentionInputs q, k [B,T,G,K], v [B,T,H,V], g [B,T,H] (<= 0), lam [B,T,H,L], plus beta.
/// Aggregate: `GdnInputs<double>{{q, k, v, g, lam}, beta}`.
template <class Scalar>
struct GdnInputs : AttentionInputs<Scalar> {
  /// Write strength [B,T,H], every entry in [0, 1] (a sigmoid in the model): the transition of
  /// token t is a_t (I - beta_t k_t k_t^T) and its write is beta_t k_t v_t^T.
  ConstTensorView<Scalar, 3> beta;
};

/// Gradients of GdnInputs' inputs, same shapes; backward passes overwrite them.
template <class Scalar>
struct GdnGrads : AttentionGrads<Scalar> {
  TensorView<Scalar, 3> dbeta;  ///< [B,T,H]
};

/// Owning storage for GdnGrads, zero-initialised and shaped after `dims`.
template <class Scalar>
struct GdnGradTensors : AttentionGradTensors<Scalar> {
  Tensor<Scalar, 3> dbeta;  ///< see GdnGrads

  /// Allocates every gradient for the sizes in `d`.
  explicit GdnGradTensors(const AttentionDims& d)
      : AttentionGradTensors<Scalar>(d), dbeta({d.B, d.T, d.H}) {}

  /// Mutable views, to pass to a Gated DeltaNet backward function.
  GdnGrads<Scalar> views() { return {AttentionGradTensors<Scalar>::views(), dbeta}; }
};

}  // namespace loglinear
