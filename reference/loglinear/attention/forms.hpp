// Dispatch by name over the three CPU forms, for callers that pick a form at run time (the
// Python module, the CLI, benchmarks). Each form is also callable directly from its own header.
/// \file
/// \brief Dispatch by name over the three CPU forms, for callers that pick a form at run time (the Python module, the CLI, benchmarks).
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/chunked.hpp>
#include <loglinear/attention/naive.hpp>
#include <loglinear/attention/recurrent.hpp>

#include <string>

namespace loglinear {

/// The three CPU forms of the operator.
enum class Form {
  naive,      ///< O(T^2) masked definition (naive.hpp)
  recurrent,  ///< O(T log T) Fenwick state stepping (recurrent.hpp)
  chunked     ///< O(T log T) blockwise (chunked.hpp)
};

/// Parses "naive", "recurrent" or "chunked".
/// @throws std::invalid_argument("form: expected one of naive, recurrent, chunked, got ...").
Form parse_form(const std::string& name);

/// Name of a form, the inverse of parse_form.
std::string form_name(Form form);

/// Forward of the chosen form; `opts` is used by the chunked form only.
template <class Scalar>
void forward(Form form, const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
             TensorView<Scalar, 4> o);

/// Backward of the chosen form; overwrites `grads`.
template <class Scalar>
void backward(Form form, const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
              ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads);

}  // namespace loglinear
