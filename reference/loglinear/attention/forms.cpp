// Run-time dispatch over the three CPU forms (see forms.hpp).
#include <loglinear/attention/forms.hpp>

#include <stdexcept>

namespace loglinear {

Form parse_form(const std::string& name) {
  if (name == "naive") return Form::naive;
  if (name == "recurrent") return Form::recurrent;
  if (name == "chunked") return Form::chunked;
  throw std::invalid_argument("form: expected one of naive, recurrent, chunked, got \"" + name +
                              "\"");
}

std::string form_name(Form form) {
  switch (form) {
    case Form::naive: return "naive";
    case Form::recurrent: return "recurrent";
    case Form::chunked: return "chunked";
  }
  return "unknown";
}

template <class Scalar>
void forward(Form form, const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
             TensorView<Scalar, 4> o) {
  switch (form) {
    case Form::naive: return naive_forward(in, o);
    case Form::recurrent: return recurrent_forward(in, o);
    case Form::chunked: return chunked_forward(in, opts, o);
  }
}

template <class Scalar>
void backward(Form form, const AttentionInputs<Scalar>& in, const ChunkedOptions& opts,
              ConstTensorView<Scalar, 4> dout, const AttentionGrads<Scalar>& grads) {
  switch (form) {
    case Form::naive: return naive_backward(in, dout, grads);
    case Form::recurrent: return recurrent_backward(in, dout, grads);
    case Form::chunked: return chunked_backward(in, opts, dout, grads);
  }
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                          \
  template void forward<Scalar>(Form, const AttentionInputs<Scalar>&, const ChunkedOptions&,   \
                                TensorView<Scalar, 4>);                                        \
  template void backward<Scalar>(Form, const AttentionInputs<Scalar>&, const ChunkedOptions&,  \
                                 ConstTensorView<Scalar, 4>, const AttentionGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
