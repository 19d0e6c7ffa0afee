// Dispatch by name over the three CPU forms of log-linear Gated DeltaNet, for callers that pick a
// form at run time (the Python module). The Mamba-2 twin is forms.hpp, whose Form enum and
// parse_form are reused here; each form is also callable directly from its own header.
/// \file
/// \brief Dispatch by name over the three CPU forms of log-linear Gated DeltaNet (SPEC.md §6), for callers that pick a form at run time (the Python module).
/// \ingroup floor_operator
#pragma once

#include <loglinear/attention/forms.hpp>
#include <loglinear/attention/gdn_chunked.hpp>
#include <loglinear/attention/gdn_naive.hpp>
#include <loglinear/attention/gdn_recurrent.hpp>

namespace loglinear {

/// Gated DeltaNet forward of the chosen form: gdn_naive_forward, gdn_recurrent_forward or
/// gdn_chunked_forward. Parse a form's name with parse_form (forms.hpp), which refuses an
/// unknown name with std::invalid_argument("form: expected one of naive, recurrent, chunked, got ...").
/// @param form  Form::naive, Form::recurrent or Form::chunked
/// @param in    q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); beta [B,T,H] in [0, 1];
///              lam [B,T,H,L], L >= num_levels(T)
/// @param opts  the chunk size, read by the chunked form only (validated and clamped there)
/// @param o     output [B,T,H,V], overwritten
/// @throws std::invalid_argument as the chosen form does (bad shapes or values, see
///         check_gdn_inputs; a bad chunk size for the chunked form), or on a Form value that is
///         none of the three.
template <class Scalar>
void gdn_forward(Form form, const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                 TensorView<Scalar, 4> o);

/// Gated DeltaNet backward of the chosen form: gdn_naive_backward, gdn_recurrent_backward or
/// gdn_chunked_backward; overwrites `grads` with dq, dk, dv, dg, dbeta and dlam.
/// @param form   Form::naive, Form::recurrent or Form::chunked
/// @param in     the forward's inputs, as gdn_forward
/// @param opts   the chunk size, read by the chunked form only
/// @param dout   dL/do [B,T,H,V]
/// @param grads  dq, dk [B,T,G,K]; dv [B,T,H,V]; dg, dbeta [B,T,H]; dlam [B,T,H,L], overwritten
/// @throws std::invalid_argument as the chosen form does, or on a Form value that is none of the three.
template <class Scalar>
void gdn_backward(Form form, const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                  ConstTensorView<Scalar, 4> dout, const GdnGrads<Scalar>& grads);

}  // namespace loglinear
