// The operator's arguments as one bundle of views: q, k, v, g, lam in SPEC.md §1's time-first
// layout, their gradients in the same layout, and the sizes read off them once validated.
// Shared by every form (naive, recurrent, chunked) and by the CUDA host API.
/// \file
/// \brief The operator's arguments as one bundle of views
/// \ingroup floor_core
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear {

/// Sizes of one call, read off validated inputs (SPEC.md §1 names).
struct AttentionDims {
  Index B = 0;  ///< batch
  Index T = 0;  ///< sequence length of this call
  Index H = 0;  ///< heads
  Index G = 0;  ///< query/key groups (divides H; G = H per-head q/k, G = 1 shared as in Mamba-2)
  Index K = 0;  ///< key / state dimension
  Index V = 0;  ///< value dimension
  Index L = 0;  ///< allocated levels of lam (>= levels)
  int levels = 0;   ///< levels actually used: num_levels(t0 + T)
  Index t0 = 0;     ///< absolute position of the first token (0 unless resuming a state)

  /// Query/key group read by head h (heads are split into G equal consecutive runs).
  Index group_of(Index h) const { return h / (H / G); }
};

/// Read-only inputs of the log-linear attention operator.
///
/// Shapes: q, k `[B,T,G,K]`; v `[B,T,H,V]`; g `[B,T,H]` (log-decay, g <= 0); lam `[B,T,H,L]`
/// with L >= num_levels(T) (levels past num_levels(T) are never read).
template <class Scalar>
struct AttentionInputs {
  ConstTensorView<Scalar, 4> q;    ///< queries [B,T,G,K] (Mamba-2: C)
  ConstTensorView<Scalar, 4> k;    ///< keys [B,T,G,K] (Mamba-2: B)
  ConstTensorView<Scalar, 4> v;    ///< values [B,T,H,V] (Mamba-2: x * dt)
  ConstTensorView<Scalar, 3> g;    ///< log-decay [B,T,H], every entry <= 0
  ConstTensorView<Scalar, 4> lam;  ///< level weights [B,T,H,L]
};

/// Gradients of the operator's inputs, same shapes as AttentionInputs; backward passes
/// overwrite them (they are outputs, not accumulators).
template <class Scalar>
struct AttentionGrads {
  TensorView<Scalar, 4> dq;    ///< [B,T,G,K], summed over the heads of each group
  TensorView<Scalar, 4> dk;    ///< [B,T,G,K], summed over the heads of each group
  TensorView<Scalar, 4> dv;    ///< [B,T,H,V]
  TensorView<Scalar, 3> dg;    ///< [B,T,H]
  TensorView<Scalar, 4> dlam;  ///< [B,T,H,L]; levels >= num_levels(T) are exactly zero
};

/// Owning storage for AttentionGrads, zero-initialised and shaped after `dims`.
template <class Scalar>
struct AttentionGradTensors {
  Tensor<Scalar, 4> dq;    ///< see AttentionGrads
  Tensor<Scalar, 4> dk;    ///< see AttentionGrads
  Tensor<Scalar, 4> dv;    ///< see AttentionGrads
  Tensor<Scalar, 3> dg;          ///< see AttentionGrads
  Tensor<Scalar, 4> dlam;        ///< see AttentionGrads

  /// Allocates every gradient for the sizes in `d`.
  explicit AttentionGradTensors(const AttentionDims& d)
      : dq({d.B, d.T, d.G, d.K}), dk({d.B, d.T, d.G, d.K}), dv({d.B, d.T, d.H, d.V}),
        dg({d.B, d.T, d.H}), dlam({d.B, d.T, d.H, d.L}) {}

  /// Mutable views, to pass to a backward function.
  AttentionGrads<Scalar> views() { return {dq, dk, dv, dg, dlam}; }
};

}  // namespace loglinear
