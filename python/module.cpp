// Python bindings: NumPy arrays in the operator's [B,T,H,D] layout, float32 or float64 (the dtype
// of q decides; mixed dtypes are an error), C++ std::invalid_argument -> ValueError with the same
// message. Non-contiguous arrays are copied into C order first, never misread. Dtypes are compared
// by NumPy's equivalence (any float64 dtype object in native byte order is float64), and
// non-native byte orders are refused with a message saying so.
#include <loglinear/attention/decoder.hpp>
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/fenwick.hpp>

#include <cstdint>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef LOGLINEAR_WITH_CUDA
#include <loglinear/cuda/chunked.hpp>
#endif

namespace py = pybind11;
using namespace loglinear;

namespace {

std::string dtype_name(const py::dtype& dt) { return py::str(py::handle(dt)).cast<std::string>(); }

// True if `a` holds Scalar values in native byte order. This is NumPy's equivalence test
// (PyArray_EquivTypes, through pybind11's array_t check), not dtype object identity: a float64 array
// whose dtype object is not NumPy's built-in singleton (unpickled arrays, dtype('=f8'), dtypes with
// metadata) is still float64.
template <class Scalar>
bool holds(const py::array& a) {
  return py::isinstance<py::array_t<Scalar>>(a);
}

// A float32 or float64 dtype in the non-native byte order (e.g. '>f8' on x86). NumPy reports the
// native order as '=' (or '<'/'>' matching the machine), so only the opposite character counts.
bool is_byte_swapped_float(const py::dtype& dt) {
  const std::uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  const char swapped = little ? '>' : '<';
  return dt.kind() == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8) && dt.byteorder() == swapped;
}

const char* const byte_order_hint =
    " (non-native byte order: convert with a.astype(a.dtype.newbyteorder('=')))";

// A C-contiguous array of Scalar (copied if the input is strided) with `rank` dimensions.
template <class Scalar>
py::array_t<Scalar, py::array::c_style> as_contiguous(const py::array& a, const char* name, int rank) {
  if (!holds<Scalar>(a)) {
    const std::string expected = dtype_name(py::dtype::of<Scalar>());
    if (is_byte_swapped_float(a.dtype()) && a.dtype().itemsize() == static_cast<py::ssize_t>(sizeof(Scalar))) {
      throw py::value_error(std::string(name) + ": expected dtype " + expected +
                            " (the dtype of q) in native byte order, got " + dtype_name(a.dtype()) +
                            byte_order_hint);
    }
    throw py::value_error(std::string(name) + ": expected dtype " + expected + " (the dtype of q), got " +
                          dtype_name(a.dtype()));
  }
  if (a.ndim() != rank) {
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(rank) +
                          "-D array, got " + std::to_string(a.ndim()) + "-D");
  }
  return py::array_t<Scalar, py::array::c_style>::ensure(a);
}

template <class Scalar, int Rank>
ConstTensorView<Scalar, Rank> view(const py::array_t<Scalar, py::array::c_style>& a) {
  ConstTensorView<Scalar, Rank> v{a.data(), {}};
  for (int i = 0; i < Rank; ++i) v.shape[i] = a.shape(i);
  return v;
}

template <class Scalar, int Rank>
py::array_t<Scalar> empty(const Shape<Rank>& shape) {
  return py::array_t<Scalar>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

template <class Scalar, int Rank>
TensorView<Scalar, Rank> mutable_view(py::array_t<Scalar>& a) {
  TensorView<Scalar, Rank> v{a.mutable_data(), {}};
  for (int i = 0; i < Rank; ++i) v.shape[i] = a.shape(i);
  return v;
}

// The five inputs converted once, kept alive by this struct.
template <class Scalar>
struct Inputs {
  py::array_t<Scalar, py::array::c_style> q, k, v, g, lam;
  Inputs(const py::array& q_, const py::array& k_, const py::array& v_, const py::array& g_,
         const py::array& lam_) {
    q = as_contiguous<Scalar>(q_, "q", 4);
    k = as_contiguous<Scalar>(k_, "k", 4);
    v = as_contiguous<Scalar>(v_, "v", 4);
    g = as_contiguous<Scalar>(g_, "g", 3);
    lam = as_contiguous<Scalar>(lam_, "lam", 4);
  }
  AttentionInputs<Scalar> views() const {
    return {view<Scalar, 4>(q), view<Scalar, 4>(k), view<Scalar, 4>(v), view<Scalar, 3>(g),
            view<Scalar, 4>(lam)};
  }
};

void check_device(const std::string& device, const std::string& form) {
  if (device == "cpu") return;
  if (device != "cuda") throw py::value_error("device: expected \"cpu\" or \"cuda\", got \"" + device + "\"");
#ifdef LOGLINEAR_WITH_CUDA
  if (!loglinear::cuda::device_available()) {
    throw std::runtime_error("device=\"cuda\": no CUDA device is present; use device=\"cpu\"");
  }
  if (form != "chunked") throw py::value_error("form: the CUDA backend implements \"chunked\" only, got \"" + form + "\"");
#else
  (void)form;
  throw std::runtime_error("device=\"cuda\": this build of loglinear has no CUDA backend "
                           "(configure with -DLOGLINEAR_CUDA=ON on a machine with nvcc); use device=\"cpu\"");
#endif
}

template <class Scalar>
py::array forward_impl(const py::array& q, const py::array& k, const py::array& v, const py::array& g,
                       const py::array& lam, const std::string& form, Index chunk, const std::string& device) {
  check_device(device, form);
  const Inputs<Scalar> in(q, k, v, g, lam);
  const Form f = parse_form(form);
  auto o = empty<Scalar, 4>({in.v.shape(0), in.v.shape(1), in.v.shape(2), in.v.shape(3)});
  auto ov = mutable_view<Scalar, 4>(o);
  const auto iv = in.views();
  if (device == "cuda") {
#ifdef LOGLINEAR_WITH_CUDA
    if constexpr (std::is_same_v<Scalar, float>) {
      py::gil_scoped_release release;
      loglinear::cuda::chunked_forward<float>(iv, {chunk}, ov);
      return std::move(o);
    }
    throw py::value_error("device=\"cuda\": expected float32 arrays, got float64");
#endif
  }
  {
    py::gil_scoped_release release;
    forward<Scalar>(f, iv, ChunkedOptions{chunk}, ov);
  }
  return std::move(o);
}

template <class Scalar>
py::dict backward_impl(const py::array& q, const py::array& k, const py::array& v, const py::array& g,
                       const py::array& lam, const py::array& dout_, const std::string& form, Index chunk,
                       const std::string& device) {
  check_device(device, form);
  const Inputs<Scalar> in(q, k, v, g, lam);
  const auto dout = as_contiguous<Scalar>(dout_, "do", 4);
  const Form f = parse_form(form);
  auto dq = empty<Scalar, 4>({in.q.shape(0), in.q.shape(1), in.q.shape(2), in.q.shape(3)});
  auto dk = empty<Scalar, 4>({in.k.shape(0), in.k.shape(1), in.k.shape(2), in.k.shape(3)});
  auto dv = empty<Scalar, 4>({in.v.shape(0), in.v.shape(1), in.v.shape(2), in.v.shape(3)});
  auto dg = empty<Scalar, 3>({in.g.shape(0), in.g.shape(1), in.g.shape(2)});
  auto dlam = empty<Scalar, 4>({in.lam.shape(0), in.lam.shape(1), in.lam.shape(2), in.lam.shape(3)});
  const AttentionGrads<Scalar> grads{mutable_view<Scalar, 4>(dq), mutable_view<Scalar, 4>(dk),
                                     mutable_view<Scalar, 4>(dv), mutable_view<Scalar, 3>(dg),
                                     mutable_view<Scalar, 4>(dlam)};
  const auto iv = in.views();
  const auto dv_view = view<Scalar, 4>(dout);
  bool done = false;
#ifdef LOGLINEAR_WITH_CUDA
  if (device == "cuda") {
    if constexpr (std::is_same_v<Scalar, float>) {
      py::gil_scoped_release release;
      loglinear::cuda::chunked_backward<float>(iv, {chunk}, dv_view, grads);
      done = true;
    } else {
      throw py::value_error("device=\"cuda\": expected float32 arrays, got float64");
    }
  }
#endif
  if (!done) {
    py::gil_scoped_release release;
    backward<Scalar>(f, iv, ChunkedOptions{chunk}, dv_view, grads);
  }
  py::dict out;
  out["dq"] = dq;
  out["dk"] = dk;
  out["dv"] = dv;
  out["dg"] = dg;
  out["dlam"] = dlam;
  return out;
}

// Dispatch on q's dtype (by NumPy's equivalence test, see holds()).
bool is_float32(const py::array& q) {
  if (holds<float>(q)) return true;
  if (holds<double>(q)) return false;
  if (is_byte_swapped_float(q.dtype())) {
    throw py::value_error("q: expected dtype float32 or float64 in native byte order, got " +
                          dtype_name(q.dtype()) + byte_order_hint);
  }
  throw py::value_error("q: expected dtype float32 or float64, got " + dtype_name(q.dtype()));
}

// Streaming decoder over float64 arrays (decoding is about exactness; use float32 via forward).
class PyDecoder {
 public:
  PyDecoder(Index B, Index H, Index G, Index K, Index V) : dec_(B, H, G, K, V), B_(B), H_(H), V_(V) {}
  py::array_t<double> step(const py::array& q, const py::array& k, const py::array& v, const py::array& g,
                           const py::array& lam) {
    const auto qc = as_contiguous<double>(q, "q_t", 3), kc = as_contiguous<double>(k, "k_t", 3);
    const auto vc = as_contiguous<double>(v, "v_t", 3), gc = as_contiguous<double>(g, "g_t", 2);
    const auto lc = as_contiguous<double>(lam, "lam_t", 3);
    auto o = empty<double, 3>({B_, H_, V_});
    dec_.step(view<double, 3>(qc), view<double, 3>(kc), view<double, 3>(vc), view<double, 2>(gc),
              view<double, 3>(lc), mutable_view<double, 3>(o));
    return o;
  }
  Index tokens() const { return dec_.tokens(); }
  py::array_t<double> state() const {
    const auto st = dec_.state();
    auto out = empty<double, 5>(st.S.shape());
    std::copy(st.S.data(), st.S.data() + st.S.size(), out.mutable_data());
    return out;
  }
  Index state_bytes() const { return dec_.state_bytes(); }

 private:
  Decoder<double> dec_;
  Index B_, H_, V_;
};

}  // namespace

PYBIND11_MODULE(loglinear, m) {
  m.doc() = "Log-linear attention (Guo et al. 2025): naive, recurrent and chunked forms with "
            "handwritten backward passes. Arrays: q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); "
            "lam [B,T,H,L] with L >= num_levels(T).";
  m.def("forward",
        [](const py::array& q, const py::array& k, const py::array& v, const py::array& g,
           const py::array& lam, const std::string& form, Index chunk_size, const std::string& device) {
          return is_float32(q) ? forward_impl<float>(q, k, v, g, lam, form, chunk_size, device)
                               : forward_impl<double>(q, k, v, g, lam, form, chunk_size, device);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("lam"),
        py::arg("form") = "chunked", py::arg("chunk_size") = 64, py::arg("device") = "cpu",
        "Output o [B,T,H,V] of log-linear attention in the chosen form "
        "(\"naive\", \"recurrent\" or \"chunked\").");
  m.def("backward",
        [](const py::array& q, const py::array& k, const py::array& v, const py::array& g,
           const py::array& lam, const py::array& dout, const std::string& form, Index chunk_size,
           const std::string& device) {
          return is_float32(q) ? backward_impl<float>(q, k, v, g, lam, dout, form, chunk_size, device)
                               : backward_impl<double>(q, k, v, g, lam, dout, form, chunk_size, device);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("lam"), py::arg("do"),
        py::arg("form") = "chunked", py::arg("chunk_size") = 64, py::arg("device") = "cpu",
        "Gradients {dq, dk, dv, dg, dlam} of sum(do * o), same layout as the inputs.");
  m.def("level", &level, py::arg("t"), py::arg("s"), "Fenwick level of token s seen from t (s <= t).");
  m.def("num_levels", &num_levels, py::arg("T"), "Levels needed by a sequence of length T: ceil(log2 T) + 1.");
  m.def("buckets",
        [](Index t) {
          std::vector<std::tuple<int, Index, Index>> out;
          for (const auto& b : buckets(t)) out.emplace_back(b.level, b.begin, b.end);
          return out;
        },
        py::arg("t"), "Non-empty Fenwick buckets of [0, t] as (level, begin, end) tuples.");
  m.def("decay_mask",
        [](const py::array& g_, const py::array& lam_) {
          const auto g = as_contiguous<double>(g_, "g", 1);
          const auto lam = as_contiguous<double>(lam_, "lam", 2);
          const Index T = g.shape(0);
          if (lam.shape(0) != T || lam.shape(1) < num_levels(T)) {
            throw py::value_error("lam: expected shape [T, L] = [" + std::to_string(T) + ", >= " +
                                  std::to_string(num_levels(T)) + "]");
          }
          const ConstVectorMap<double> gm(g.data(), T, Eigen::InnerStride<>(1));
          const ConstMatrixMap<double> lm(lam.data(), T, lam.shape(1), Eigen::OuterStride<>(lam.shape(1)));
          const RowMatrix<double> W = decay_mask(gm, lm);
          auto out = empty<double, 2>({T, T});
          std::copy(W.data(), W.data() + W.size(), out.mutable_data());
          return out;
        },
        py::arg("g"), py::arg("lam"),
        "The T x T weight matrix W[t,s] = lam[t, level(t,s)] exp(G_t - G_s) of one head (float64).");
  py::class_<PyDecoder>(m, "Decoder", "Streaming decoder over B x H streams (float64), O(L K V) memory each.")
      .def(py::init<Index, Index, Index, Index, Index>(), py::arg("B"), py::arg("H"), py::arg("G"),
           py::arg("K"), py::arg("V"))
      .def("step", &PyDecoder::step, py::arg("q_t"), py::arg("k_t"), py::arg("v_t"), py::arg("g_t"),
           py::arg("lam_t"), "Consume one token per stream (q_t, k_t [B,G,K]; v_t [B,H,V]; g_t [B,H]; "
           "lam_t [B,H,L]) and return o_t [B,H,V].")
      .def_property_readonly("tokens", &PyDecoder::tokens, "Tokens consumed so far.")
      .def_property_readonly("state_bytes", &PyDecoder::state_bytes, "Bytes held by the level states.")
      .def("state", &PyDecoder::state, "The per-level states [B,H,num_levels(tokens),K,V].");
#ifdef LOGLINEAR_WITH_CUDA
  m.attr("has_cuda") = true;
  m.def("cuda_available", &loglinear::cuda::device_available, "True if the CUDA backend can run here.");
#else
  m.attr("has_cuda") = false;
  m.def("cuda_available", [] { return false; }, "True if the CUDA backend can run here.");
#endif
}
