// A named trainable tensor with its gradient: what the optimiser, the checkpoint and the gradient
// checks iterate over. Lives in core/ because every parameterised floor (lambda/, decay/, nn/)
// owns Params and train/ updates them.
/// \file
/// \brief A named trainable tensor with its gradient
/// \ingroup floor_core
#pragma once

#include <loglinear/core/tensor.hpp>

#include <string>

namespace loglinear {

/// One trainable tensor: value and gradient of the same shape (vectors are 1 x n rows).
template <class Scalar>
struct Param {
  std::string name;        ///< unique within a model, e.g. "layers.0.Wq"
  RowMatrix<Scalar> value; ///< the parameter
  RowMatrix<Scalar> grad;  ///< d(loss)/d(value); backward passes add into it
  bool weight_decay = true;  ///< false for norms, biases and decay/level parameters (as the sources)

  /// A parameter initialised to `v`, gradient zero.
  Param(std::string n, RowMatrix<Scalar> v, bool wd = true)
      : name(std::move(n)), value(std::move(v)), grad(RowMatrix<Scalar>::Zero(value.rows(), value.cols())),
        weight_decay(wd) {}
};

}  // namespace loglinear
