// Gated DeltaNet argument validation; see gdn_checks.hpp. The Mamba-2 inputs are checked by
// check_inputs itself, so both operators reject the same bad q, k, v, g, lam with the same words.
#include <loglinear/core/gdn_checks.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace loglinear {

namespace {

// beta's shape against the sizes of q, k, v, g, lam: one message for both entry points.
void check_beta_shape(const Shape<3>& beta, const AttentionDims& d) {
  check_shape<3>("beta", beta, {d.B, d.T, d.H}, " = [B,T,H]");
}

}  // namespace

AttentionDims check_gdn_input_shapes(const Shape<4>& q, const Shape<4>& k, const Shape<4>& v,
                                     const Shape<3>& g, const Shape<4>& lam, const Shape<3>& beta,
                                     Index t0) {
  const AttentionDims d = check_input_shapes(q, k, v, g, lam, t0);
  check_beta_shape(beta, d);
  return d;
}

template <class Scalar>
AttentionDims check_gdn_inputs(const GdnInputs<Scalar>& in, Index t0) {
  const AttentionDims d = check_inputs<Scalar>(in, t0);
  check_beta_shape(in.beta.shape, d);
  if (in.beta.data == nullptr) throw std::invalid_argument("beta: expected data, got null");
  check_finite<Scalar, 3>("beta", in.beta);
  for (Index i = 0; i < in.beta.size(); ++i) {
    const Scalar x = in.beta.data[i];
    if (x < 0 || x > 1) {
      throw std::invalid_argument("beta: expected values in [0, 1], got " + std::to_string(x) +
                                  " at flat index " + std::to_string(i));
    }
  }
  return d;
}

template <class Scalar>
void check_gdn_grads(const GdnGrads<Scalar>& grads, const AttentionDims& d) {
  check_grads<Scalar>(grads, d);
  check_shape<3>("dbeta", grads.dbeta.shape, {d.B, d.T, d.H}, " (as beta)");
  // Shapes alone do not catch a view of the right shape over no memory (the backward writes
  // through every pointer).
  const std::pair<const char*, const void*> ptrs[] = {{"dq", grads.dq.data}, {"dk", grads.dk.data},
                                                      {"dv", grads.dv.data}, {"dg", grads.dg.data},
                                                      {"dlam", grads.dlam.data}, {"dbeta", grads.dbeta.data}};
  for (const auto& [name, p] : ptrs)
    if (!p) throw std::invalid_argument(std::string(name) + ": expected data, got nullptr");
}

template <class Scalar>
AttentionDims check_gdn_backward_arguments(const GdnInputs<Scalar>& in, ConstTensorView<Scalar, 4> dout,
                                           const GdnGrads<Scalar>& grads) {
  const AttentionDims d = check_gdn_inputs(in);
  check_shape<4>("dout", dout.shape, {d.B, d.T, d.H, d.V}, " = [B,T,H,V]");
  if (!dout.data) throw std::invalid_argument("dout: expected data, got nullptr");
  check_finite<Scalar, 4>("dout", dout);
  check_gdn_grads(grads, d);
  return d;
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                  \
  template AttentionDims check_gdn_inputs<Scalar>(const GdnInputs<Scalar>&, Index);    \
  template void check_gdn_grads<Scalar>(const GdnGrads<Scalar>&, const AttentionDims&);             \
  template AttentionDims check_gdn_backward_arguments<Scalar>(const GdnInputs<Scalar>&,            \
                                                              ConstTensorView<Scalar, 4>, const GdnGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
