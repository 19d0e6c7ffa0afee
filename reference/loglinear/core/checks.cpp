// Argument validation shared by every form; see checks.hpp. One pass over each input for
// finiteness is O(size), negligible next to the operator itself.
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <cmath>

namespace loglinear {

template <class Scalar, int Rank>
void check_finite(const std::string& name, ConstTensorView<Scalar, Rank> t) {
  for (Index i = 0; i < t.size(); ++i) {
    if (!std::isfinite(t.data[i])) {
      throw std::invalid_argument(name + ": expected finite values, got " +
                                  std::to_string(t.data[i]) + " at flat index " +
                                  std::to_string(i));
    }
  }
}

void check_chunk_size(Index C) {
  if (C < 1 || (C & (C - 1)) != 0) {
    throw std::invalid_argument("chunk_size: expected a power of two >= 1, got " +
                                std::to_string(C));
  }
}

template <class Scalar>
AttentionDims check_inputs(const AttentionInputs<Scalar>& in, Index t0) {
  AttentionDims d;
  d.B = in.q.shape[0];
  d.T = in.q.shape[1];
  d.G = in.q.shape[2];
  d.K = in.q.shape[3];
  d.H = in.v.shape[2];
  d.V = in.v.shape[3];
  d.L = in.lam.shape[3];
  d.t0 = t0;
  if (d.T < 1) throw std::invalid_argument("q: expected T >= 1 tokens (dimension 1), got T = " +
                                           std::to_string(d.T));
  if (d.B < 1 || d.G < 1 || d.K < 1) {
    throw std::invalid_argument("q: expected shape [B,T,G,K] with every size >= 1, got " +
                                shape_string<4>(in.q.shape));
  }
  if (d.H < 1 || d.V < 1) {
    throw std::invalid_argument("v: expected shape [B,T,H,V] with every size >= 1, got " +
                                shape_string<4>(in.v.shape));
  }
  if (t0 < 0) throw std::invalid_argument("t0: expected >= 0, got " + std::to_string(t0));
  check_shape<4>("k", in.k.shape, in.q.shape, " (same as q)");
  check_shape<4>("v", in.v.shape, {d.B, d.T, d.H, d.V}, " (B, T as q)");
  if (d.H % d.G != 0) {
    throw std::invalid_argument("q: expected the group count G to divide the head count H = " +
                                std::to_string(d.H) + ", got G = " + std::to_string(d.G));
  }
  check_shape<3>("g", in.g.shape, {d.B, d.T, d.H}, " = [B,T,H]");
  d.levels = num_levels(t0 + d.T);
  if (in.lam.shape[0] != d.B || in.lam.shape[1] != d.T || in.lam.shape[2] != d.H ||
      d.L < d.levels) {
    throw std::invalid_argument(
        "lam: expected shape [B,T,H,L] = [" + std::to_string(d.B) + "," + std::to_string(d.T) +
        "," + std::to_string(d.H) + ",L] with L >= num_levels(" + std::to_string(t0 + d.T) +
        ") = " + std::to_string(d.levels) + ", got " + shape_string<4>(in.lam.shape));
  }
  for (auto [name, ptr] : {std::pair{"q", in.q.data}, {"k", in.k.data}, {"v", in.v.data},
                           {"g", in.g.data}, {"lam", in.lam.data}}) {
    if (ptr == nullptr) throw std::invalid_argument(std::string(name) + ": expected data, got null");
  }
  check_finite<Scalar, 4>("q", in.q);
  check_finite<Scalar, 4>("k", in.k);
  check_finite<Scalar, 4>("v", in.v);
  check_finite<Scalar, 3>("g", in.g);
  check_finite<Scalar, 4>("lam", in.lam);
  for (Index i = 0; i < in.g.size(); ++i) {
    if (in.g.data[i] > 0) {
      throw std::invalid_argument("g: expected log-decay values <= 0, got " +
                                  std::to_string(in.g.data[i]) + " at flat index " +
                                  std::to_string(i));
    }
  }
  return d;
}

template <class Scalar>
void check_grads(const AttentionGrads<Scalar>& gr, const AttentionDims& d) {
  check_shape<4>("dq", gr.dq.shape, {d.B, d.T, d.G, d.K}, " (as q)");
  check_shape<4>("dk", gr.dk.shape, {d.B, d.T, d.G, d.K}, " (as k)");
  check_shape<4>("dv", gr.dv.shape, {d.B, d.T, d.H, d.V}, " (as v)");
  check_shape<3>("dg", gr.dg.shape, {d.B, d.T, d.H}, " (as g)");
  check_shape<4>("dlam", gr.dlam.shape, {d.B, d.T, d.H, d.L}, " (as lam)");
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                      \
  template void check_finite<Scalar, 2>(const std::string&, ConstTensorView<Scalar, 2>);   \
  template void check_finite<Scalar, 3>(const std::string&, ConstTensorView<Scalar, 3>);   \
  template void check_finite<Scalar, 4>(const std::string&, ConstTensorView<Scalar, 4>);   \
  template void check_finite<Scalar, 5>(const std::string&, ConstTensorView<Scalar, 5>);   \
  template AttentionDims check_inputs<Scalar>(const AttentionInputs<Scalar>&, Index);      \
  template void check_grads<Scalar>(const AttentionGrads<Scalar>&, const AttentionDims&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
