// Run-time dispatch over the three CPU forms of Gated DeltaNet (see gdn_forms.hpp).
#include <loglinear/attention/gdn_forms.hpp>

#include <stdexcept>
#include <string>

namespace loglinear {

namespace {

// A Form outside the enum (a cast from an integer): refused rather than silently doing nothing.
[[noreturn]] void bad_form(Form form) {
  throw std::invalid_argument("form: expected one of naive, recurrent, chunked, got the value " +
                              std::to_string(static_cast<int>(form)));
}

}  // namespace

template <class Scalar>
void gdn_forward(Form form, const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                 TensorView<Scalar, 4> o) {
  switch (form) {
    case Form::naive: return gdn_naive_forward(in, o);
    case Form::recurrent: return gdn_recurrent_forward(in, o);
    case Form::chunked: return gdn_chunked_forward(in, opts, o);
  }
  bad_form(form);
}

template <class Scalar>
void gdn_backward(Form form, const GdnInputs<Scalar>& in, const ChunkedOptions& opts,
                  ConstTensorView<Scalar, 4> dout, const GdnGrads<Scalar>& grads) {
  switch (form) {
    case Form::naive: return gdn_naive_backward(in, dout, grads);
    case Form::recurrent: return gdn_recurrent_backward(in, dout, grads);
    case Form::chunked: return gdn_chunked_backward(in, opts, dout, grads);
  }
  bad_form(form);
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                               \
  template void gdn_forward<Scalar>(Form, const GdnInputs<Scalar>&, const ChunkedOptions&,          \
                                    TensorView<Scalar, 4>);                                         \
  template void gdn_backward<Scalar>(Form, const GdnInputs<Scalar>&, const ChunkedOptions&,         \
                                     ConstTensorView<Scalar, 4>, const GdnGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
