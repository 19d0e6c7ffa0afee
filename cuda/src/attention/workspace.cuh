// Layout of the device workspace of one chunked call: gamma, the chunk summaries U (stage 2),
// the level states Hin (stage 3), the summaries' gradient dU (backward) and, for bf16 storage, the
// float32 accumulators of o or dq, dk, dv, and the carried state's decay sums (and, backward, the
// final state and its decay gradient). SPEC.md §5 names; O(E B H N K V) floats, E chunk
// levels. Built once per call from validated sizes (checks.cuh); the CPU keeps the same buffers
// per head in reference/loglinear/attention/chunked.cpp.
#pragma once

#include <loglinear/cuda/chunked.hpp>

#include "params.cuh"

#include <cstddef>

namespace loglinear::cuda {

/// Offsets (in floats) of the workspace's parts; each part starts on a 256-byte boundary.
struct WorkspaceLayout {
  std::size_t gamma = 0, U = 0, Hin = 0, dU = 0;   ///< [B,H,T], [B,H,N,K,V], [E,B,H,N,K,V], [B,H,N,K,V]
  std::size_t o32 = 0, dq32 = 0, dk32 = 0, dv32 = 0;  ///< bf16 storage only: float32 o or gradients
  std::size_t Gpre = 0, Gsuf = 0;                     ///< [B,H,T] each: the carried state's decays
  std::size_t S_work = 0, dG_last = 0;                ///< backward: [B,H,Lf,K,V] and [B*H]
  std::size_t cu = 0;                                 ///< packed sequences: the [B+1] int64 offsets
  std::size_t total = 0;                              ///< floats in all
  bool backward = false;                              ///< dU and the gradients' accumulators
  bool varlen = false;                                ///< packed sequences: the offsets' part
  Precision precision = Precision::fp32;              ///< bf16 adds the float32 accumulators

  /// The parts a forward (backward = false) or backward call with sizes `s` needs.
  /// @throws std::invalid_argument if the byte count does not fit in 64 bits.
  WorkspaceLayout(const ChunkedSizes& s, Precision precision, bool backward);

  /// Bytes of the whole workspace.
  std::size_t bytes() const { return total * sizeof(float); }

  /// A params struct with the sizes `s` and every workspace part placed in `base`: gamma, U, Hin,
  /// dU, and for bf16 storage the float32 o (forward) or dq, dk, dv (backward). The caller sets
  /// the inputs and the outputs that live outside the workspace.
  template <class In>
  ChunkedParams<In> params(const ChunkedSizes& s, void* base) const;
};

}  // namespace loglinear::cuda
