// Shape checks and elementwise helpers shared by the decay parameterisations (SPEC.md §14, §10).
#pragma once

#include <loglinear/core/tensor.hpp>
#include <loglinear/models/layers.hpp>

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

/// log sigmoid(x) = -softplus(-x), finite for every finite x (SPEC.md §10).
template <class Scalar>
Scalar log_sigmoid(Scalar x) {
  return -models::softplus(-x);
}

}  // namespace loglinear::decay::detail
