// Shape checks and the TNL rate shared by the decay parameterisations (SPEC.md §14, §10).
/// \file
/// \brief Shape checks and the TNL rate shared by the decay parameterisations (SPEC.md §14, §10).
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>
#include <loglinear/core/activations.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace loglinear::decay::detail {

/// Throws std::invalid_argument naming `name` unless m is [rows, H] (rows = -1: any, divisible by B).
template <class Scalar>
void check_decay_shape(const std::string& name, const RowMatrix<Scalar>& m, Index H, Index rows,
                       Index B = 1) {
  const bool ok = m.cols() == H && (rows < 0 ? (B > 0 && m.rows() % B == 0) : m.rows() == rows);
  if (ok) return;
  throw std::invalid_argument(name + ": expected shape [B*T, H] with H = " + std::to_string(H) +
                              (rows < 0 ? " and rows divisible by B = " + std::to_string(B)
                                        : " and B*T = " + std::to_string(rows)) +
                              ", got [" + std::to_string(m.rows()) + "," + std::to_string(m.cols()) + "]");
}

/// The TNL rate of head h of H in layer l of L (SPEC.md §14.2): g_h = s_h (1 - l/(L-1) + 1e-5),
/// s_h = -1/n_h, n_h = 2 * 128^(h/(H-1)). Where the formula would divide by zero (H = 1 or L = 1;
/// tnl rejects both, tnl_l only needs a starting point) the ratio is taken as 0: head 0's rate,
/// layer 0's depth factor.
inline double tnl_rate(Index h, Index H, Index l, Index L) {
  const double head = H > 1 ? double(h) / double(H - 1) : 0.0;
  const double depth = 1.0 - (L > 1 ? double(l) / double(L - 1) : 0.0) + 1e-5;
  return -depth / (2.0 * std::pow(128.0, head));
}

}  // namespace loglinear::decay::detail
