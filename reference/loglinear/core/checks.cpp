// Argument validation shared by every form; see checks.hpp. One pass over each input for
// finiteness is O(size), negligible next to the operator itself.
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

#include <unistd.h>

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

Index effective_chunk_size(Index C, Index end) {
  check_chunk_size(C);
  if (end < 1) throw std::invalid_argument("t0 + T: expected >= 1, got " + std::to_string(end));
  // Smallest power of two >= end; end <= 2^62 keeps the shift in range.
  if (end > (Index{1} << 62)) return C;
  const Index ceil = Index{1} << bit_width(static_cast<std::uint64_t>(end - 1));
  return std::min(C, ceil);
}

Index checked_product(const std::string& what, std::initializer_list<Index> sizes) {
  Index n = 1;
  std::string text;
  bool overflow = false;
  for (Index s : sizes) {
    text += (text.empty() ? "" : " x ") + std::to_string(s);
    if (s < 0) throw std::invalid_argument(what + ": expected sizes >= 0, got " + text);
    if (s != 0 && n > std::numeric_limits<Index>::max() / s) overflow = true;
    if (!overflow) n *= s;
  }
  if (overflow) {
    throw std::invalid_argument(what + ": the element count " + text + " overflows a 64-bit index");
  }
  return n;
}

namespace {

// Physical memory of this machine in bytes (the most any allocation could ever get), or the
// largest Index where the platform does not say.
Index physical_memory_bytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && pages <= std::numeric_limits<Index>::max() / page)
    return static_cast<Index>(pages) * page;
#endif
  return std::numeric_limits<Index>::max();
}

}  // namespace

void check_allocation(const std::string& what, Index count, Index bytes_each) {
  if (count < 0 || bytes_each < 0) {
    throw std::invalid_argument(what + ": expected sizes >= 0, got " + std::to_string(count) +
                                " x " + std::to_string(bytes_each) + " bytes");
  }
  const Index memory = physical_memory_bytes();
  const bool overflow = bytes_each != 0 && count > std::numeric_limits<Index>::max() / bytes_each;
  if (overflow || count * bytes_each > memory) {
    throw std::invalid_argument(
        what + ": needs " + std::to_string(count) + " x " + std::to_string(bytes_each) + " = " +
        (overflow ? std::string("more than 2^63") : std::to_string(count * bytes_each)) +
        " bytes, more than this machine's memory (" + std::to_string(memory) + " bytes)");
  }
}

AttentionDims check_input_shapes(const Shape<4>& q, const Shape<4>& k, const Shape<4>& v,
                                 const Shape<3>& g, const Shape<4>& lam, Index t0) {
  AttentionDims d;
  d.B = q[0];
  d.T = q[1];
  d.G = q[2];
  d.K = q[3];
  d.H = v[2];
  d.V = v[3];
  d.L = lam[3];
  d.t0 = t0;
  if (d.T < 1) throw std::invalid_argument("q: expected T >= 1 tokens (dimension 1), got T = " +
                                           std::to_string(d.T));
  if (d.B < 1 || d.G < 1 || d.K < 1) {
    throw std::invalid_argument("q: expected shape [B,T,G,K] with every size >= 1, got " +
                                shape_string<4>(q));
  }
  if (d.H < 1 || d.V < 1) {
    throw std::invalid_argument("v: expected shape [B,T,H,V] with every size >= 1, got " +
                                shape_string<4>(v));
  }
  if (t0 < 0) throw std::invalid_argument("t0: expected >= 0, got " + std::to_string(t0));
  check_shape<4>("k", k, q, " (same as q)");
  check_shape<4>("v", v, {d.B, d.T, d.H, d.V}, " (B, T as q)");
  if (d.H % d.G != 0) {
    throw std::invalid_argument("q: expected the group count G to divide the head count H = " +
                                std::to_string(d.H) + ", got G = " + std::to_string(d.G));
  }
  check_shape<3>("g", g, {d.B, d.T, d.H}, " = [B,T,H]");
  if (t0 > std::numeric_limits<Index>::max() - d.T) {
    throw std::invalid_argument("t0: expected t0 + T to fit in a 64-bit index, got t0 = " +
                                std::to_string(t0) + ", T = " + std::to_string(d.T));
  }
  d.levels = num_levels(t0 + d.T);
  if (lam[0] != d.B || lam[1] != d.T || lam[2] != d.H || d.L < d.levels) {
    throw std::invalid_argument(
        "lam: expected shape [B,T,H,L] = [" + std::to_string(d.B) + "," + std::to_string(d.T) +
        "," + std::to_string(d.H) + ",L] with L >= num_levels(" + std::to_string(t0 + d.T) +
        ") = " + std::to_string(d.levels) + ", got " + shape_string<4>(lam));
  }
  // Element counts that fit: size() below and every stride of the forms multiply these out.
  checked_product("q", {d.B, d.T, d.G, d.K});
  checked_product("v", {d.B, d.T, d.H, d.V});
  checked_product("lam", {d.B, d.T, d.H, d.L});
  return d;
}

template <class Scalar>
AttentionDims check_inputs(const AttentionInputs<Scalar>& in, Index t0) {
  const AttentionDims d = check_input_shapes(in.q.shape, in.k.shape, in.v.shape, in.g.shape,
                                             in.lam.shape, t0);
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
