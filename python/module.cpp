// Python bindings: NumPy arrays in the operator's [B,T,H,D] layout, computed in float32 or float64.
//
// Every argument arrives as a plain Python object and is converted here, so that a wrong argument
// gets a message naming it instead of pybind11's overload dump (the rules are in kArgumentRules,
// the module docstring):
// - arrays: anything numpy.asarray takes (ndarray, list, tuple, scalar). The working dtype is
//   float32 if q's dtype is float32, float64 otherwise. Every array is converted to it only if
//   the conversion is exact (checked_array: NumPy's "safe" casting of real numbers, plus a value check
//   for 64-bit integers); otherwise TypeError. A wrong number of dimensions is a ValueError.
//   Non-contiguous arrays and non-native byte orders are copied, never misread.
// - integers: int or anything with __index__ (numpy integers), not bool; TypeError otherwise,
//   ValueError if the value does not fit in 64 bits (except chunk_size, see to_chunk_size).
// - strings: str only (TypeError otherwise).
// C++ std::invalid_argument becomes ValueError with the same message, naming the argument.
#include <loglinear/attention/decoder.hpp>
#include <loglinear/attention/forms.hpp>
#include <loglinear/attention/gdn_forms.hpp>
#include <loglinear/attention/varlen.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/core/gdn_checks.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef LOGLINEAR_WITH_CUDA
#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/decoder.hpp>
#endif

namespace py = pybind11;
using namespace loglinear;

namespace {

const char* const kArgumentRules = R"(
Arguments
---------
Arrays may be NumPy arrays or anything numpy.asarray accepts (lists, tuples, scalars).
The working dtype is float32 when q's dtype is float32 and float64 otherwise (lists of Python
floats, integer arrays, float16 and float64 arrays); outputs have the working dtype. Decoder and
decay_mask always work in float64.

Every array is converted to the working dtype only if no value can change ("without loss"):
NumPy's safe casting between real number types, i.e.
  into float64: float16, float32, float64, int8..int32, uint8..uint32, and int64 / uint64
                arrays whose values all have magnitude <= 2**53 (ValueError otherwise);
  into float32: float16, float32, int8, int16, uint8, uint16.
Anything else (bool, complex, object, str, datetime, longdouble, float64 into float32, ...) is a
TypeError that names the argument and the dtypes accepted: convert it yourself with .astype(...).
Non-contiguous arrays and non-native byte orders are copied, never misread.

A wrong number of dimensions, a shape that does not match, an empty array, NaN or Inf, g > 0,
beta outside [0, 1] or a size that cannot fit in memory raise ValueError with a message naming
the argument. Integer arguments must be ints (or NumPy integers; not bool, not float): TypeError
otherwise, and ValueError if they do not fit in 64 bits.

chunk_size must be a power of two >= 1. A chunk size above the sequence length T is clamped to the
smallest power of two >= T: the chunking, and the result, are then the same bit for bit, so
chunk_size=2**40 at T = 100 computes what chunk_size=128 does.
)";

const char* type_name(py::object obj) { return Py_TYPE(obj.ptr())->tp_name; }

std::string dtype_name(const py::dtype& dt) { return py::str(py::object(dt)).cast<std::string>(); }

py::module_ numpy() { return py::module_::import("numpy"); }

bool is_bool(py::object obj) {
  return PyBool_Check(obj.ptr()) || py::isinstance(obj, numpy().attr("bool_"));
}

// An integer argument: TypeError unless an int (or __index__ type such as numpy.int64, not
// bool); ValueError naming the argument if it does not fit in 64 bits.
Index to_index(const std::string& name, py::object obj) {
  if (is_bool(obj) || !PyIndex_Check(obj.ptr())) {
    throw py::type_error(name + ": expected an int, got " + type_name(obj));
  }
  const auto i = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!i) {  // e.g. a 1-element array: has __index__ but refuses it
    PyErr_Clear();
    throw py::type_error(name + ": expected an int, got " + type_name(obj));
  }
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0) {
    throw py::value_error(name + ": expected an integer that fits in 64 bits (|x| < 2**63), got one of " +
                          py::str(i.attr("bit_length")()).cast<std::string>() + " bits");
  }
  if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
  return static_cast<Index>(v);
}

// chunk_size: as to_index, except that a power of two beyond 64 bits is passed on as 2^62. It is
// above any T, so the C++ side clamps it (effective_chunk_size) exactly as it would the caller's.
Index to_chunk_size(py::object obj) {
  if (PyLong_Check(obj.ptr()) && !is_bool(obj)) {
    const auto n = py::reinterpret_borrow<py::int_>(obj);
    const py::int_ zero(0), one(1);
    if (n > zero && (n & (n - one)).equal(zero) &&
        n.attr("bit_length")().cast<long long>() > 63) {
      return Index{1} << 62;
    }
  }
  return to_index("chunk_size", obj);
}

// A string argument: str only.
std::string to_str(const std::string& name, py::object obj) {
  if (!PyUnicode_Check(obj.ptr())) throw py::type_error(name + ": expected a str, got " + type_name(obj));
  Py_ssize_t size = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(obj.ptr(), &size);
  if (utf8 == nullptr) {  // lone surrogates
    PyErr_Clear();
    throw py::value_error(name + ": expected a str that encodes to UTF-8");
  }
  return std::string(utf8, static_cast<size_t>(size));
}

// numpy.asarray(obj), with a TypeError naming the argument if NumPy cannot make an array of it
// (ragged nested lists, objects whose __array__ raises, ...).
py::array to_ndarray(const std::string& name, py::object obj) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  try {
    return numpy().attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_Exception)) throw;  // KeyboardInterrupt, SystemExit
    throw py::type_error(name + ": expected an array-like of real numbers, got " + type_name(obj) +
                         " that numpy.asarray refuses (" + e.what() + ")");
  }
}

// The size in bytes of one element of dtype dt, asked of NumPy in Python. pybind11 before 2.12
// (Debian 12 has 2.10) reads py::dtype::itemsize() from NumPy 1's PyArray_Descr layout, which
// NumPy 2 changed: there it reads a flags word (0 for the numeric types), so it must not be used
// (nor pybind11's array constructors that derive strides from it; see tokens_array). kind() sits
// at the same offset in both layouts.
py::ssize_t itemsize(const py::dtype& dt) { return dt.attr("itemsize").cast<py::ssize_t>(); }

bool is_float32(const py::dtype& dt) { return dt.kind() == 'f' && itemsize(dt) == 4; }

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// The dtypes checked_array<Scalar> accepts, for its TypeError.
template <class Scalar>
const char* accepted() {
  return std::is_same_v<Scalar, float>
             ? "float32, or a dtype that converts to it without loss (float16, int8, int16, uint8, uint16)"
             : "float64, or a dtype that converts to it without loss (float16, float32, int8..int32, "
               "uint8..uint32; int64/uint64 with values of magnitude <= 2**53)";
}

// 64-bit integers into float64: NumPy calls the cast safe, but only |x| <= 2^53 is exact.
template <class Int>
void check_exact_in_double(const std::string& name, const py::array& a) {
  const auto ints = py::array_t<Int, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!ints) throw py::error_already_set();
  const Int limit = Int{1} << 53;
  for (py::ssize_t i = 0; i < ints.size(); ++i) {
    const Int x = ints.data()[i];
    if (x > limit || (std::is_signed_v<Int> && x < -limit)) {
      throw py::value_error(name + ": expected integers of magnitude <= 2**53 (exact in float64), got " +
                            std::to_string(x) + " at flat index " + std::to_string(i));
    }
  }
}

// An array argument, checked but not converted yet: numpy.asarray of it, whose dtype converts to
// Scalar without loss (else TypeError) and which has `rank` dimensions (else ValueError).
// `layout` names the dimensions ("[B,T,G,K]"), `why` says where the dtype comes from.
template <class Scalar>
py::array checked_array(const std::string& name, py::object obj, int rank, const char* layout,
                        const char* why = "") {
  const py::array a = to_ndarray(name, obj);
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const bool real = kind == 'f' || kind == 'i' || kind == 'u';
  if (!real || !numpy().attr("can_cast")(dt, py::dtype::of<Scalar>(), "safe").template cast<bool>()) {
    throw py::type_error(name + ": expected dtype " + accepted<Scalar>() + why + ", got " +
                         (py::isinstance<py::array>(obj) ? "" : std::string(type_name(obj)) + " of ") +
                         "dtype " + dtype_name(dt) + "; convert it with .astype(numpy." +
                         dtype_name(py::dtype::of<Scalar>()) + ") if that is what you mean");
  }
  if (a.ndim() != rank) {
    throw py::value_error(name + ": expected a " + std::to_string(rank) + "-D array " + layout + ", got " +
                          std::to_string(a.ndim()) + "-D of shape " + shape_of(a));
  }
  return a;
}

// A checked array as a C-contiguous, native-order array of Scalar, copied only if it is not one.
template <class Scalar>
py::array_t<Scalar, py::array::c_style> converted(const std::string& name, const py::array& a) {
  if (!py::isinstance<py::array_t<Scalar, py::array::c_style>>(a)) {
    // A copy (other dtype, order or strides): of a broadcast view it can be far bigger than the
    // memory the caller holds, so refuse what cannot fit before NumPy allocates it.
    check_allocation(name + ": the converted copy of shape " + shape_of(a), a.size(), sizeof(Scalar));
  }
  const py::dtype dt = a.dtype();
  if (std::is_same_v<Scalar, double> && itemsize(dt) == 8) {
    if (dt.kind() == 'i') check_exact_in_double<std::int64_t>(name, a);
    if (dt.kind() == 'u') check_exact_in_double<std::uint64_t>(name, a);
  }
  auto out = py::array_t<Scalar, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!out) throw py::error_already_set();
  return out;
}

template <class Scalar>
py::array_t<Scalar, py::array::c_style> to_input(const std::string& name, py::object obj, int rank,
                                                 const char* layout) {
  return converted<Scalar>(name, checked_array<Scalar>(name, obj, rank, layout));
}

template <int Rank>
Shape<Rank> shape(const py::array& a) {
  Shape<Rank> s{};
  for (int i = 0; i < Rank; ++i) s[i] = a.shape(i);
  return s;
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

// The five inputs (six with Gated DeltaNet's beta) converted once, kept alive by this struct.
// Dtypes, ranks and shapes are all checked (check_input_shapes / check_gdn_input_shapes) before
// anything is converted or copied.
template <class Scalar>
struct Inputs {
  py::array_t<Scalar, py::array::c_style> q, k, v, g, lam;
  py::array_t<Scalar, py::array::c_style> beta;  // Gated DeltaNet only, else empty
  AttentionDims dims;
  // packed: the inputs of cu_seqlens sequences, whose lam needs num_levels(longest sequence)
  // levels, not num_levels(T); check_varlen checks that, so the level count is not checked here.
  Inputs(py::object q_, py::object k_, py::object v_, py::object g_, py::object lam_,
         std::optional<py::object> beta_ = std::nullopt, bool packed = false) {
    const char* why = " (the working dtype, set by q)";
    const py::array qa = checked_array<Scalar>("q", q_, 4, "[B,T,G,K]", why);
    const py::array ka = checked_array<Scalar>("k", k_, 4, "[B,T,G,K]", why);
    const py::array va = checked_array<Scalar>("v", v_, 4, "[B,T,H,V]", why);
    const py::array ga = checked_array<Scalar>("g", g_, 3, "[B,T,H]", why);
    const py::array la = checked_array<Scalar>("lam", lam_, 4, "[B,T,H,L]", why);
    if (beta_) {
      const py::array ba = checked_array<Scalar>("beta", *beta_, 3, "[B,T,H]", why);
      dims = check_gdn_input_shapes(shape<4>(qa), shape<4>(ka), shape<4>(va), shape<3>(ga), shape<4>(la),
                                    shape<3>(ba));
      beta = converted<Scalar>("beta", ba);
    } else {
      Shape<4> lam_shape = shape<4>(la);
      if (packed && lam_shape[1] >= 1) lam_shape[3] = std::max<Index>(lam_shape[3], num_levels(lam_shape[1]));
      dims = check_input_shapes(shape<4>(qa), shape<4>(ka), shape<4>(va), shape<3>(ga), lam_shape);
    }
    q = converted<Scalar>("q", qa);
    k = converted<Scalar>("k", ka);
    v = converted<Scalar>("v", va);
    g = converted<Scalar>("g", ga);
    lam = converted<Scalar>("lam", la);
  }
  AttentionInputs<Scalar> views() const {
    return {view<Scalar, 4>(q), view<Scalar, 4>(k), view<Scalar, 4>(v), view<Scalar, 3>(g),
            view<Scalar, 4>(lam)};
  }
  GdnInputs<Scalar> gdn_views() const { return {views(), view<Scalar, 3>(beta)}; }
};

// The arguments of forward / backward other than the arrays.
struct Options {
  Form form;
  Index chunk_size;
  std::string device;
};

Options to_options(py::object form, py::object chunk_size, py::object device) {
  const std::string f = to_str("form", form), dev = to_str("device", device);
  const Index C = to_chunk_size(chunk_size);
  if (dev != "cpu" && dev != "cuda") throw py::value_error("device: expected \"cpu\" or \"cuda\", got \"" + dev + "\"");
#ifdef LOGLINEAR_WITH_CUDA
  if (dev == "cuda") {
    if (!loglinear::cuda::device_available()) {
      throw std::runtime_error("device=\"cuda\": no CUDA device is present; use device=\"cpu\"");
    }
    if (f != "chunked") throw py::value_error("form: the CUDA backend implements \"chunked\" only, got \"" + f + "\"");
  }
#else
  if (dev == "cuda") {
    throw std::runtime_error("device=\"cuda\": this build of loglinear has no CUDA backend "
                             "(configure with -DLOGLINEAR_CUDA=ON on a machine with nvcc); use device=\"cpu\"");
  }
#endif
  return {parse_form(f), C, dev};
}

template <class Scalar>
py::array forward_impl(const Inputs<Scalar>& in, const Options& opt) {
  auto o = empty<Scalar, 4>({in.v.shape(0), in.v.shape(1), in.v.shape(2), in.v.shape(3)});
  auto ov = mutable_view<Scalar, 4>(o);
  const auto iv = in.views();
  if (opt.device == "cuda") {
#ifdef LOGLINEAR_WITH_CUDA
    if constexpr (std::is_same_v<Scalar, float>) {
      py::gil_scoped_release release;
      // Clamped here too (the GPU takes C <= 64), so chunk_size=2**40 at T <= 64 runs there as well.
      loglinear::cuda::chunked_forward<float>(iv, {effective_chunk_size(opt.chunk_size, in.dims.T)}, ov);
      return std::move(o);
    }
    throw py::value_error("device=\"cuda\": expected float32 arrays, got float64");
#endif
  }
  {
    py::gil_scoped_release release;
    forward<Scalar>(opt.form, iv, ChunkedOptions{opt.chunk_size}, ov);
  }
  return std::move(o);
}

// The output gradient `do` of a backward: the working dtype, shape [B,T,H,V] as v, finite.
template <class Scalar>
py::array_t<Scalar, py::array::c_style> checked_dout(const Inputs<Scalar>& in, py::object dout_) {
  const py::array da = checked_array<Scalar>("do", dout_, 4, "[B,T,H,V]", " (the working dtype, set by q)");
  const AttentionDims& d = in.dims;
  check_shape<4>("do", shape<4>(da), {d.B, d.T, d.H, d.V}, " = [B,T,H,V] (as v)");
  auto dout = converted<Scalar>("do", da);
  check_finite<Scalar, 4>("do", view<Scalar, 4>(dout));  // here, so that the message names "do", not "dout"
  return dout;
}

// An uninitialised array of a's shape (a gradient of input a).
template <class Scalar, int Rank>
py::array_t<Scalar> empty_like(const py::array& a) {
  return empty<Scalar, Rank>(shape<Rank>(a));
}

template <class Scalar>
py::dict backward_impl(const Inputs<Scalar>& in, py::object dout_, const Options& opt) {
  const auto dout = checked_dout(in, dout_);
  const auto dout_view = view<Scalar, 4>(dout);
  auto dq = empty_like<Scalar, 4>(in.q), dk = empty_like<Scalar, 4>(in.k), dv = empty_like<Scalar, 4>(in.v);
  auto dg = empty_like<Scalar, 3>(in.g);
  auto dlam = empty_like<Scalar, 4>(in.lam);
  const AttentionGrads<Scalar> grads{mutable_view<Scalar, 4>(dq), mutable_view<Scalar, 4>(dk),
                                     mutable_view<Scalar, 4>(dv), mutable_view<Scalar, 3>(dg),
                                     mutable_view<Scalar, 4>(dlam)};
  const auto iv = in.views();
  bool done = false;
#ifdef LOGLINEAR_WITH_CUDA
  if (opt.device == "cuda") {
    if constexpr (std::is_same_v<Scalar, float>) {
      py::gil_scoped_release release;
      loglinear::cuda::chunked_backward<float>(iv, {effective_chunk_size(opt.chunk_size, in.dims.T)}, dout_view,
                                               grads);
      done = true;
    } else {
      throw py::value_error("device=\"cuda\": expected float32 arrays, got float64");
    }
  }
#endif
  if (!done) {
    py::gil_scoped_release release;
    backward<Scalar>(opt.form, iv, ChunkedOptions{opt.chunk_size}, dout_view, grads);
  }
  py::dict out;
  out["dq"] = dq;
  out["dk"] = dk;
  out["dv"] = dv;
  out["dg"] = dg;
  out["dlam"] = dlam;
  return out;
}

// Gated DeltaNet (CPU only): the form by name (parse_form, whose ValueError lists the three) and
// the chunk size, converted as forward's.
struct GdnOptions {
  Form form;
  Index chunk_size;
};

GdnOptions to_gdn_options(py::object form, py::object chunk_size) {
  const std::string f = to_str("form", form);
  const Index C = to_chunk_size(chunk_size);
  return {parse_form(f), C};
}

template <class Scalar>
py::array gdn_forward_impl(const Inputs<Scalar>& in, const GdnOptions& opt) {
  auto o = empty_like<Scalar, 4>(in.v);
  auto ov = mutable_view<Scalar, 4>(o);
  const auto iv = in.gdn_views();
  {
    py::gil_scoped_release release;
    gdn_forward<Scalar>(opt.form, iv, ChunkedOptions{opt.chunk_size}, ov);
  }
  return std::move(o);
}

template <class Scalar>
py::dict gdn_backward_impl(const Inputs<Scalar>& in, py::object dout_, const GdnOptions& opt) {
  const auto dout = checked_dout(in, dout_);
  const auto dout_view = view<Scalar, 4>(dout);
  auto dq = empty_like<Scalar, 4>(in.q), dk = empty_like<Scalar, 4>(in.k), dv = empty_like<Scalar, 4>(in.v);
  auto dg = empty_like<Scalar, 3>(in.g), dbeta = empty_like<Scalar, 3>(in.beta);
  auto dlam = empty_like<Scalar, 4>(in.lam);
  const GdnGrads<Scalar> grads{{mutable_view<Scalar, 4>(dq), mutable_view<Scalar, 4>(dk),
                                mutable_view<Scalar, 4>(dv), mutable_view<Scalar, 3>(dg),
                                mutable_view<Scalar, 4>(dlam)},
                               mutable_view<Scalar, 3>(dbeta)};
  const auto iv = in.gdn_views();
  {
    py::gil_scoped_release release;
    gdn_backward<Scalar>(opt.form, iv, ChunkedOptions{opt.chunk_size}, dout_view, grads);
  }
  py::dict out;
  out["dq"] = dq;
  out["dk"] = dk;
  out["dv"] = dv;
  out["dg"] = dg;
  out["dbeta"] = dbeta;
  out["dlam"] = dlam;
  return out;
}

// ---- Carried state and packed sequences (forward_state / backward_state, the torch op's core) ----
//
// A state crosses the Python boundary in one padded layout, whatever the call: `states`
// [N,H,L,K,V] and `tokens` [N] (int64), one row per sequence (N = B for a dense batch, the number
// of sequences for packed cu_seqlens). Sequence i has num_levels(tokens[i]) levels (none when
// tokens[i] == 0); its levels above that are padding and must be zero in an input state (a
// nonzero value there would be silently dropped, so it is refused), and are zero in an output.

// Levels a Fenwick state holds after n tokens.
Index state_levels(Index n) { return n == 0 ? 0 : num_levels(n); }

// The token counts of a state: a 1-D array of N integers >= 0 (int64 or any integer dtype).
std::vector<Index> to_tokens(const std::string& name, py::object obj, Index N) {
  const py::array a = to_ndarray(name, obj);
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u') {
    throw py::type_error(name + ": expected an integer array (int64), got dtype " + dtype_name(a.dtype()));
  }
  if (a.ndim() != 1 || a.shape(0) != N) {
    throw py::value_error(name + ": expected shape (" + std::to_string(N) + ",) (one count per sequence), got " +
                          shape_of(a));
  }
  const auto t = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!t) throw py::error_already_set();
  std::vector<Index> out(static_cast<size_t>(N));
  for (Index i = 0; i < N; ++i) {
    const auto x = t.data()[i];
    // 2^62 tokens: beyond any sequence a machine holds, and num_levels stays small.
    if (x < 0 || x > (std::int64_t{1} << 62)) {
      throw py::value_error(name + ": expected token counts in [0, 2**62], got " + std::to_string(x) +
                            " at index " + std::to_string(i));
    }
    out[static_cast<size_t>(i)] = x;
  }
  return out;
}

// The padded state's rank, shape and padding checked, converted; `levels_needed[i]` levels of
// sequence i are read. `role` says which (initial_state / d_final_state) for the messages.
template <class Scalar>
py::array_t<Scalar, py::array::c_style> checked_state(const std::string& name, py::object obj, Index N,
                                                      const AttentionDims& d, const std::vector<Index>& tokens,
                                                      const char* tokens_name, bool padding_must_be_zero) {
  std::vector<Index> levels;
  for (Index t : tokens) levels.push_back(state_levels(t));
  const py::array a = checked_array<Scalar>(name, obj, 5, "[N,H,L,K,V]", " (the working dtype, set by q)");
  Index need = 0;
  for (Index l : levels) need = std::max(need, l);
  if (a.shape(0) != N || a.shape(1) != d.H || a.shape(3) != d.K || a.shape(4) != d.V || a.shape(2) < need) {
    throw py::value_error(name + ": expected shape [N,H,L,K,V] = (" + std::to_string(N) + ", " +
                          std::to_string(d.H) + ", L >= " + std::to_string(need) + ", " + std::to_string(d.K) +
                          ", " + std::to_string(d.V) + ") (L: the levels of the longest state), got " + shape_of(a));
  }
  auto s = converted<Scalar>(name, a);
  check_finite<Scalar, 5>(name, view<Scalar, 5>(s));
  if (padding_must_be_zero) {
    const Index H = d.H, L = s.shape(2), KV = d.K * d.V;
    for (Index i = 0; i < N; ++i)
      for (Index h = 0; h < H; ++h)
        for (Index l = levels[static_cast<size_t>(i)]; l < L; ++l) {
          const Scalar* p = s.data() + ((i * H + h) * L + l) * KV;
          if (std::any_of(p, p + KV, [](Scalar x) { return x != 0; })) {
            throw py::value_error(name + ": level " + std::to_string(l) + " of sequence " + std::to_string(i) +
                                  " is nonzero, but the state after " + tokens_name + "[" + std::to_string(i) +
                                  "] = " + std::to_string(tokens[static_cast<size_t>(i)]) + " tokens has " +
                                  std::to_string(levels[static_cast<size_t>(i)]) +
                                  " levels (the levels above are padding and must be zero)");
          }
        }
  }
  return s;
}

// Rows [first, first + rows) of the padded state, levels [0, levels), as a FenwickState-shaped tensor.
template <class Scalar>
Tensor<Scalar, 5> unpad(const py::array_t<Scalar, py::array::c_style>& s, Index first, Index rows, Index levels) {
  const Index H = s.shape(1), L = s.shape(2), K = s.shape(3), V = s.shape(4);
  Tensor<Scalar, 5> out({rows, H, levels, K, V});
  for (Index b = 0; b < rows; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index l = 0; l < levels; ++l)
        std::copy_n(s.data() + (((first + b) * H + h) * L + l) * K * V, K * V,
                    out.data() + ((b * H + h) * levels + l) * K * V);
  return out;
}

// Per-sequence tensors [1 or B, H, l_i, K, V] into one padded array [N,H,max l_i,K,V].
template <class Scalar>
py::array_t<Scalar> pad(const std::vector<const Tensor<Scalar, 5>*>& parts, Index H, Index K, Index V,
                        Index min_levels = 0) {
  Index N = 0, L = min_levels;
  for (const auto* p : parts) {
    N += p->shape()[0];
    L = std::max(L, p->shape()[2]);
  }
  auto out = empty<Scalar, 5>({N, H, L, K, V});
  std::fill(out.mutable_data(), out.mutable_data() + out.size(), Scalar(0));
  Index row = 0;
  for (const auto* p : parts) {
    const Index rows = p->shape()[0], l_i = p->shape()[2];
    for (Index b = 0; b < rows; ++b, ++row)
      for (Index h = 0; h < H; ++h)
        for (Index l = 0; l < l_i; ++l)
          std::copy_n(p->data() + ((b * H + h) * l_i + l) * K * V, K * V,
                      out.mutable_data() + ((row * H + h) * L + l) * K * V);
  }
  return out;
}

// What forward_state / backward_state share: the inputs, the sequences (dense rows or packed),
// and the initial state split per sequence.
template <class Scalar>
struct StatefulCall {
  const Inputs<Scalar>& in;
  Form form;
  ChunkedOptions opts;
  std::optional<py::array_t<Index, py::array::c_style>> cu;  // packed sequences, if cu_seqlens given
  Index N = 0;                                                // sequences
  std::vector<Index> lengths;                                 // tokens each sequence adds in this call
  bool has_initial = false;
  std::vector<Index> tokens0;                                 // initial token count per sequence
  std::vector<FenwickState<Scalar>> initial;                  // per sequence (varlen) or one (dense)
  Index initial_levels = 0;                                   // L of the padded initial_state given

  StatefulCall(const Inputs<Scalar>& inputs, py::object form_, py::object chunk_size, py::object cu_seqlens,
               py::object initial_state, py::object initial_tokens)
      : in(inputs), form(parse_form(to_str("form", form_))), opts{to_chunk_size(chunk_size)} {
    const AttentionDims& d = in.dims;
    if (!cu_seqlens.is_none()) {
      const py::array a = to_ndarray("cu_seqlens", cu_seqlens);
      const char kind = a.dtype().kind();
      if (kind != 'i' && kind != 'u') {
        throw py::type_error("cu_seqlens: expected an integer array (int64 offsets), got dtype " +
                             dtype_name(a.dtype()));
      }
      if (a.ndim() != 1) throw py::value_error("cu_seqlens: expected a 1-D array of offsets, got shape " + shape_of(a));
      auto c = py::array_t<Index, py::array::c_style | py::array::forcecast>::ensure(a);
      if (!c) throw py::error_already_set();
      check_varlen<Scalar>(in.views(), view<Index, 1>(c));
      N = c.shape(0) - 1;
      for (Index i = 0; i < N; ++i) lengths.push_back(c.data()[i + 1] - c.data()[i]);
      cu = std::move(c);
    } else {
      N = d.B;
      lengths.assign(static_cast<size_t>(N), d.T);
    }
    if (initial_state.is_none() != initial_tokens.is_none()) {
      throw py::value_error(std::string(initial_state.is_none() ? "initial_tokens" : "initial_state") +
                            ": given without " + (initial_state.is_none() ? "initial_state" : "initial_tokens") +
                            "; a state is both (the per-level states and the token count of every sequence)");
    }
    if (form == Form::naive) {
      throw py::value_error("form: the naive form keeps no state; forward_state / backward_state take \"chunked\" "
                            "or \"recurrent\"");
    }
    if (initial_state.is_none()) return;
    has_initial = true;
    tokens0 = to_tokens("initial_tokens", initial_tokens, N);
    if (!cu) {
      for (Index i = 1; i < N; ++i)
        if (tokens0[static_cast<size_t>(i)] != tokens0[0]) {
          throw py::value_error("initial_tokens: expected one token count for every row of a dense batch (rows 0 and " +
                                std::to_string(i) + " have " + std::to_string(tokens0[0]) + " and " +
                                std::to_string(tokens0[static_cast<size_t>(i)]) +
                                "); pack sequences of different lengths with cu_seqlens");
        }
    }
    const auto s = checked_state<Scalar>("initial_state", initial_state, N, d, tokens0, "initial_tokens", true);
    initial_levels = s.shape(2);
    if (cu) {
      for (Index i = 0; i < N; ++i) {
        const Index n = tokens0[static_cast<size_t>(i)];
        initial.push_back({n, unpad<Scalar>(s, i, 1, state_levels(n))});
      }
    } else {
      initial.push_back({tokens0[0], unpad<Scalar>(s, 0, N, state_levels(tokens0[0]))});
    }
  }
  ConstTensorView<Index, 1> cu_view() const { return view<Index, 1>(*cu); }

  // The token count of sequence i after this call.
  Index final_tokens(Index i) const {
    return (has_initial ? tokens0[static_cast<size_t>(i)] : 0) + lengths[static_cast<size_t>(i)];
  }
  // The state request of a dense call (sequence 0's initial state stands for every row).
  StateIO<Scalar> dense_io(FenwickState<Scalar>* final) const {
    return {has_initial ? &initial[0] : nullptr, final};
  }
  VarlenStateIO<Scalar> varlen_io(std::vector<FenwickState<Scalar>>* final) const {
    return {has_initial ? &initial : nullptr, final};
  }
  py::array_t<std::int64_t> tokens_array(bool after) const {
    // The shape constructor: its strides come from sizeof, whereas array_t(count) asks NumPy's
    // descriptor through pybind11 2.10's NumPy-1 layout and, under NumPy 2, got stride 0, so every
    // count read as the first (found on the GPU machine: torch 2.11 with NumPy 2.5).
    auto t = empty<std::int64_t, 1>({N});
    for (Index i = 0; i < N; ++i) t.mutable_data()[i] = after ? final_tokens(i) : tokens0[static_cast<size_t>(i)];
    return t;
  }
};

template <class Scalar>
py::tuple forward_state_impl(const StatefulCall<Scalar>& call) {
  const AttentionDims& d = call.in.dims;
  auto o = empty<Scalar, 4>({d.B, d.T, d.H, d.V});
  auto ov = mutable_view<Scalar, 4>(o);
  const auto iv = call.in.views();
  py::array_t<Scalar> final_state;
  if (call.cu) {
    std::vector<FenwickState<Scalar>> fin;
    {
      py::gil_scoped_release release;
      forward_varlen<Scalar>(call.form, iv, call.cu_view(), call.opts, ov, call.varlen_io(&fin));
    }
    std::vector<const Tensor<Scalar, 5>*> parts;
    for (const auto& f : fin) parts.push_back(&f.S);
    final_state = pad<Scalar>(parts, d.H, d.K, d.V);
  } else {
    FenwickState<Scalar> fin;
    {
      py::gil_scoped_release release;
      if (call.form == Form::recurrent) recurrent_forward<Scalar>(iv, ov, call.dense_io(&fin));
      else chunked_forward<Scalar>(iv, call.opts, ov, call.dense_io(&fin));
    }
    final_state = pad<Scalar>({&fin.S}, d.H, d.K, d.V);
  }
  return py::make_tuple(std::move(o), std::move(final_state), call.tokens_array(true));
}

template <class Scalar>
py::dict backward_state_impl(const StatefulCall<Scalar>& call, py::object dout_, py::object d_final_state) {
  const AttentionDims& d = call.in.dims;
  const auto dout = checked_dout(call.in, dout_);
  const auto dout_view = view<Scalar, 4>(dout);
  auto dq = empty_like<Scalar, 4>(call.in.q), dk = empty_like<Scalar, 4>(call.in.k);
  auto dv = empty_like<Scalar, 4>(call.in.v), dg = empty_like<Scalar, 3>(call.in.g);
  auto dlam = empty_like<Scalar, 4>(call.in.lam);
  const AttentionGrads<Scalar> grads{mutable_view<Scalar, 4>(dq), mutable_view<Scalar, 4>(dk),
                                     mutable_view<Scalar, 4>(dv), mutable_view<Scalar, 3>(dg),
                                     mutable_view<Scalar, 4>(dlam)};
  // The gradient arriving at the final state: its padding levels belong to no state and are ignored.
  std::vector<Tensor<Scalar, 5>> d_final;
  if (!d_final_state.is_none()) {
    std::vector<Index> fin_tokens;
    for (Index i = 0; i < call.N; ++i) fin_tokens.push_back(call.final_tokens(i));
    const auto s = checked_state<Scalar>("d_final_state", d_final_state, call.N, d, fin_tokens, "final tokens", false);
    if (call.cu) {
      for (Index i = 0; i < call.N; ++i) d_final.push_back(unpad<Scalar>(s, i, 1, state_levels(fin_tokens[static_cast<size_t>(i)])));
    } else {
      d_final.push_back(unpad<Scalar>(s, 0, call.N, state_levels(fin_tokens[0])));
    }
  }
  const auto iv = call.in.views();
  py::dict out;
  std::vector<Tensor<Scalar, 5>> d_initial;
  {
    py::gil_scoped_release release;
    if (call.cu) {
      backward_varlen<Scalar>(call.form, iv, call.cu_view(), call.opts, dout_view, grads, call.varlen_io(nullptr),
                              d_final.empty() ? nullptr : &d_final, call.has_initial ? &d_initial : nullptr);
    } else {
      d_initial.resize(1);
      const Tensor<Scalar, 5>* df = d_final.empty() ? nullptr : &d_final[0];
      Tensor<Scalar, 5>* di = call.has_initial ? &d_initial[0] : nullptr;
      if (call.form == Form::recurrent) {
        recurrent_backward<Scalar>(iv, dout_view, grads, call.dense_io(nullptr), df, di);
      } else {
        chunked_backward<Scalar>(iv, call.opts, dout_view, grads, call.dense_io(nullptr), df, di);
      }
    }
  }
  out["dq"] = dq;
  out["dk"] = dk;
  out["dv"] = dv;
  out["dg"] = dg;
  out["dlam"] = dlam;
  if (call.has_initial) {
    std::vector<const Tensor<Scalar, 5>*> parts;
    for (const auto& t : d_initial) parts.push_back(&t);
    // The shape of initial_state as given, padding included (zero there), as autograd expects.
    out["d_initial_state"] = pad<Scalar>(parts, d.H, d.K, d.V, call.initial_levels);
  }
  return out;
}

// Streaming decoder over float64 arrays (decoding is about exactness; use float32 via forward).
class PyDecoder {
 public:
  PyDecoder(Index B, Index H, Index G, Index K, Index V) : dec_(B, H, G, K, V), B_(B), H_(H), V_(V) {}
  py::array_t<double> step(py::object q, py::object k, py::object v, py::object g, py::object lam) {
    const auto qc = to_input<double>("q_t", q, 3, "[B,G,K]"), kc = to_input<double>("k_t", k, 3, "[B,G,K]");
    const auto vc = to_input<double>("v_t", v, 3, "[B,H,V]"), gc = to_input<double>("g_t", g, 2, "[B,H]");
    const auto lc = to_input<double>("lam_t", lam, 3, "[B,H,L]");
    // B x H x V <= B x H x K x V, which the Decoder checked fits in memory.
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


#ifdef LOGLINEAR_WITH_CUDA
// ---- Device-pointer entry points of loglinear.torch's CUDA path (issue 15) -------------------
// Private (leading underscore): loglinear/torch.py owns every buffer. It checks devices, dtypes,
// contiguity and values (finite, g <= 0) with torch on the GPU, takes the workspace from torch's
// caching allocator and passes torch's current stream; here the shapes get the library's own
// checks (check_input_shapes, then the GPU limits of chunked_workspace_bytes), so a bad shape
// raises the same named ValueError as on the CPU.
Shape<4> to_shape4(const std::string& name, py::object obj) {
  const py::sequence s = obj.cast<py::sequence>();
  if (s.size() != 4) throw std::invalid_argument(name + ": expected 4 dimensions, got " + std::to_string(s.size()));
  return {to_index(name, s[0]), to_index(name, s[1]), to_index(name, s[2]), to_index(name, s[3])};
}

Shape<3> to_shape3(const std::string& name, py::object obj) {
  const py::sequence s = obj.cast<py::sequence>();
  if (s.size() != 3) throw std::invalid_argument(name + ": expected 3 dimensions, got " + std::to_string(s.size()));
  return {to_index(name, s[0]), to_index(name, s[1]), to_index(name, s[2])};
}

struct DeviceCall {
  AttentionDims dims;
  ChunkedOptions opts;
  bool bf16 = false;
  std::vector<Index> cu;  // packed sequences' offsets (cu_seqlens); empty for a dense batch
  const Index* cu_device = nullptr;  // the same offsets on the device, if the caller has them
  ConstTensorView<Index, 1> cu_view() const { return {cu.data(), {Index(cu.size())}}; }
};

DeviceCall device_call(py::object q, py::object k, py::object v, py::object g, py::object lam,
                       py::object chunk_size, py::object precision, Index t0 = 0,
                       py::object cu_seqlens = py::none()) {
  DeviceCall c;
  const Shape<4> lam_shape = to_shape4("lam", lam);
  Shape<4> lam_checked = lam_shape;
  Index extent = 0;  // the tokens one Fenwick tree spans: t0 + T, or the longest packed sequence
  if (!cu_seqlens.is_none()) {
    for (py::handle x : cu_seqlens.cast<py::sequence>()) c.cu.push_back(to_index("cu_seqlens", py::reinterpret_borrow<py::object>(x)));
    for (size_t i = 0; i + 1 < c.cu.size(); ++i) extent = std::max(extent, c.cu[i + 1] - c.cu[i]);
    // Packed: L is checked against the longest sequence by the CUDA call (check_varlen), not
    // against the packed T; the shape checks below get an L that passes theirs.
    lam_checked[3] = std::max<Index>(lam_shape[3], num_levels(std::max<Index>(to_shape4("q", q)[1], 1)));
  }
  c.dims = check_input_shapes(to_shape4("q", q), to_shape4("k", k), to_shape4("v", v), to_shape3("g", g),
                              lam_checked, t0);
  c.dims.L = lam_shape[3];
  if (c.cu.empty()) extent = c.dims.t0 + c.dims.T;
  // Clamped as forward's device="cuda" path does (the GPU takes C <= 64; C above the tokens of one
  // tree changes nothing).
  c.opts.chunk_size = effective_chunk_size(to_chunk_size(chunk_size), std::max<Index>(extent, 1));
  const std::string p = to_str("precision", precision);
  if (p != "fp32" && p != "bf16") {
    throw std::invalid_argument("precision: expected \"fp32\" or \"bf16\", got \"" + p + "\"");
  }
  c.bf16 = p == "bf16";
  return c;
}

cuda::Precision precision_of(const DeviceCall& c) { return c.bf16 ? cuda::Precision::bf16 : cuda::Precision::fp32; }

template <class T>
T* device_ptr(const std::string& name, py::object obj) {
  const auto address = obj.cast<std::uintptr_t>();
  if (address == 0) throw std::invalid_argument(name + ": expected a device pointer, got 0");
  return reinterpret_cast<T*>(address);
}

// A device pointer that may be absent (0 -> nullptr): the carried state's optional buffers.
template <class T>
T* optional_device_ptr(py::object obj) {
  return reinterpret_cast<T*>(obj.cast<std::uintptr_t>());
}

// ptrs[0..4]: q, k, v (storage In), g and lam (float32), every device call's first five pointers.
template <class In>
cuda::DeviceInputs<In> device_inputs(const py::sequence& ptrs) {
  cuda::DeviceInputs<In> in;
  in.q = device_ptr<const In>("q", ptrs[0]);
  in.k = device_ptr<const In>("k", ptrs[1]);
  in.v = device_ptr<const In>("v", ptrs[2]);
  in.g = device_ptr<const float>("g", ptrs[3]);
  in.lam = device_ptr<const float>("lam", ptrs[4]);
  return in;
}

// The forward: ptrs = (q, k, v, g, lam, o), or with a carried state (..., o, initial or 0,
// final or 0), the state buffers float32 [B,H,num_levels(t0),K,V] and [B,H,num_levels(t0+T),K,V].
template <class In>
void device_forward(const DeviceCall& c, py::sequence ptrs, py::object workspace, py::object workspace_bytes,
                    py::object stream) {
  const cuda::DeviceInputs<In> in = device_inputs<In>(ptrs);
  In* o = device_ptr<In>("o", ptrs[5]);
  cuda::DeviceState state;
  if (ptrs.size() == 8) state = {optional_device_ptr<const float>(ptrs[6]), optional_device_ptr<float>(ptrs[7])};
  if (!c.cu.empty() && state.initial != nullptr) {
    throw std::invalid_argument("initial_state: expected none with cu_seqlens in one GPU call (a packed call "
                                "returns final states only; continue each sequence with its own stateful call)");
  }
  void* ws = device_ptr<void>("workspace", workspace);
  const auto bytes = static_cast<std::size_t>(to_index("workspace_bytes", workspace_bytes));
  auto* st = reinterpret_cast<cudaStream_t>(stream.cast<std::uintptr_t>());
  py::gil_scoped_release release;  // the kernels are queued on `st`; nothing here waits for them
  if (!c.cu.empty()) {  // packed: final states only (state.initial is 0 from loglinear.torch)
    cuda::chunked_forward_varlen_device<In>(in, c.dims, c.cu_view(), c.opts, o, ws, bytes, st, c.cu_device,
                                            state.final);
  }
  else cuda::chunked_forward_device<In>(in, c.dims, c.opts, o, ws, bytes, st, state);
}

// The backward: ptrs = (q, k, v, g, lam, do, dq, dk, dv, dg, dlam), or with a carried state
// (..., dlam, initial or 0, d_final or 0, d_initial or 0).
template <class In>
void device_backward(const DeviceCall& c, py::sequence ptrs, py::object workspace, py::object workspace_bytes,
                     py::object stream) {
  const cuda::DeviceInputs<In> in = device_inputs<In>(ptrs);
  const In* dout = device_ptr<const In>("do", ptrs[5]);
  cuda::DeviceGrads<In> gr;
  gr.dq = device_ptr<In>("dq", ptrs[6]);
  gr.dk = device_ptr<In>("dk", ptrs[7]);
  gr.dv = device_ptr<In>("dv", ptrs[8]);
  gr.dg = device_ptr<float>("dg", ptrs[9]);
  gr.dlam = device_ptr<float>("dlam", ptrs[10]);
  cuda::DeviceState state;
  cuda::DeviceStateGrads sg;
  if (ptrs.size() == 14) {
    state.initial = optional_device_ptr<const float>(ptrs[11]);
    sg = {optional_device_ptr<const float>(ptrs[12]), optional_device_ptr<float>(ptrs[13])};
  }
  void* ws = device_ptr<void>("workspace", workspace);
  const auto bytes = static_cast<std::size_t>(to_index("workspace_bytes", workspace_bytes));
  auto* st = reinterpret_cast<cudaStream_t>(stream.cast<std::uintptr_t>());
  py::gil_scoped_release release;
  if (!c.cu.empty()) {
    cuda::chunked_backward_varlen_device<In>(in, c.dims, c.cu_view(), c.opts, dout, gr, ws, bytes, st, c.cu_device);
  }
  else cuda::chunked_backward_device<In>(in, c.dims, c.opts, dout, gr, ws, bytes, st, state, sg);
}
#endif

}  // namespace

PYBIND11_MODULE(_loglinear, m) {
  m.doc() = std::string(
                "Log-linear attention (Guo et al. 2025): naive, recurrent and chunked forms with "
                "handwritten backward passes. Arrays: q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); "
                "lam [B,T,H,L] with L >= num_levels(T).\n"
                "forward / backward compute the Mamba-2 operator; gdn_forward / gdn_backward log-linear "
                "Gated DeltaNet, which takes beta [B,T,H] in [0, 1] as well.\n") +
            kArgumentRules;
  m.def("forward",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object form,
           py::object chunk_size, py::object device) -> py::array {
          const Options opt = to_options(form, chunk_size, device);
          const py::array qa = to_ndarray("q", q);
          if (is_float32(qa.dtype())) return forward_impl<float>(Inputs<float>(qa, k, v, g, lam), opt);
          return forward_impl<double>(Inputs<double>(qa, k, v, g, lam), opt);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("lam"),
        py::arg("form") = "chunked", py::arg("chunk_size") = 64, py::arg("device") = "cpu",
        "Output o [B,T,H,V] of log-linear attention in the chosen form (\"naive\", \"recurrent\" or "
        "\"chunked\"), in the working dtype (float32 if q is float32, else float64).\n"
        "chunk_size: a power of two >= 1; one above T is clamped to the smallest power of two >= T "
        "(same result bit for bit). See help(loglinear) for how arguments are converted.");
  m.def("backward",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object dout,
           py::object form, py::object chunk_size, py::object device) -> py::dict {
          const Options opt = to_options(form, chunk_size, device);
          const py::array qa = to_ndarray("q", q);
          if (is_float32(qa.dtype())) return backward_impl<float>(Inputs<float>(qa, k, v, g, lam), dout, opt);
          return backward_impl<double>(Inputs<double>(qa, k, v, g, lam), dout, opt);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("lam"), py::arg("do"),
        py::arg("form") = "chunked", py::arg("chunk_size") = 64, py::arg("device") = "cpu",
        "Gradients {dq, dk, dv, dg, dlam} of sum(do * o), same layout as the inputs, in the working "
        "dtype. Arguments as forward (help(loglinear)).");
  m.def("forward_state",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object initial_state,
           py::object initial_tokens, py::object cu_seqlens, py::object form, py::object chunk_size) -> py::tuple {
          const py::array qa = to_ndarray("q", q);
          if (is_float32(qa.dtype())) {
            const Inputs<float> in(qa, k, v, g, lam, std::nullopt, !cu_seqlens.is_none());
            return forward_state_impl<float>({in, form, chunk_size, cu_seqlens, initial_state, initial_tokens});
          }
          const Inputs<double> in(qa, k, v, g, lam, std::nullopt, !cu_seqlens.is_none());
          return forward_state_impl<double>({in, form, chunk_size, cu_seqlens, initial_state, initial_tokens});
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("lam"), py::arg("initial_state") = py::none(),
        py::arg("initial_tokens") = py::none(), py::arg("cu_seqlens") = py::none(), py::arg("form") = "chunked",
        py::arg("chunk_size") = 64,
        "(o, final_state, final_tokens): forward with a carried Fenwick state and/or packed sequences (CPU; "
        "form \"chunked\" or \"recurrent\").\n"
        "A state is two arrays: states [N,H,L,K,V] (the working dtype) and tokens [N] (int64), one row per "
        "sequence; sequence i has num_levels(tokens[i]) levels (none at 0 tokens) and its levels above that "
        "are zero padding. initial_state / initial_tokens: the state each sequence continues from (both or "
        "neither; a dense batch has one token count for all rows). cu_seqlens: int64 offsets [S+1] of packed "
        "sequences in a B = 1 batch (FlashAttention convention), each its own Fenwick tree, chunks aligned to "
        "every sequence start. lam needs L >= num_levels(tokens[i] + length of sequence i). final_state has "
        "max_i num_levels(final_tokens[i]) levels.");
  m.def("backward_state",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object dout,
           py::object initial_state, py::object initial_tokens, py::object cu_seqlens, py::object d_final_state,
           py::object form, py::object chunk_size) -> py::dict {
          const py::array qa = to_ndarray("q", q);
          if (is_float32(qa.dtype())) {
            const Inputs<float> in(qa, k, v, g, lam, std::nullopt, !cu_seqlens.is_none());
            return backward_state_impl<float>({in, form, chunk_size, cu_seqlens, initial_state, initial_tokens},
                                              dout, d_final_state);
          }
          const Inputs<double> in(qa, k, v, g, lam, std::nullopt, !cu_seqlens.is_none());
          return backward_state_impl<double>({in, form, chunk_size, cu_seqlens, initial_state, initial_tokens},
                                             dout, d_final_state);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("lam"), py::arg("do"),
        py::arg("initial_state") = py::none(), py::arg("initial_tokens") = py::none(),
        py::arg("cu_seqlens") = py::none(), py::arg("d_final_state") = py::none(), py::arg("form") = "chunked",
        py::arg("chunk_size") = 64,
        "Gradients {dq, dk, dv, dg, dlam[, d_initial_state]} of sum(do * o) + sum(d_final_state * final_state) "
        "for forward_state's call with the same arguments. d_final_state: [N,H,L,K,V] with L >= the final "
        "state's levels (padding levels are ignored), or None. d_initial_state (only when initial_state is "
        "given) has initial_state's shape, zero on its padding levels.");
  m.def("gdn_forward",
        [](py::object q, py::object k, py::object v, py::object g, py::object beta, py::object lam,
           py::object form, py::object chunk_size) -> py::array {
          const GdnOptions opt = to_gdn_options(form, chunk_size);
          const py::array qa = to_ndarray("q", q);
          if (is_float32(qa.dtype())) return gdn_forward_impl<float>(Inputs<float>(qa, k, v, g, lam, beta), opt);
          return gdn_forward_impl<double>(Inputs<double>(qa, k, v, g, lam, beta), opt);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("beta"), py::arg("lam"),
        py::arg("form") = "chunked", py::arg("chunk_size") = 64,
        "Output o [B,T,H,V] of log-linear Gated DeltaNet (SPEC.md §6) in the chosen form (\"naive\", "
        "\"recurrent\" or \"chunked\"), in the working dtype (float32 if q is float32, else float64), "
        "on the CPU.\n"
        "q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (<= 0); beta [B,T,H], the write strength, in [0, 1]; "
        "lam [B,T,H,L] with L >= num_levels(T). Every Fenwick level state S takes the delta-rule "
        "transition exp(g_t) (I - beta_t k_t k_t^T) S, the token writes beta_t k_t v_t^T, and "
        "o_t = sum_l lam_t[l] S[l]^T q_t. Keys are usually L2-normalised (|k| <= 1 keeps every "
        "transition a contraction).\n"
        "chunk_size: the chunked form's, a power of two >= 1; one above T is clamped to the smallest "
        "power of two >= T (same result bit for bit). See help(loglinear) for how arguments are converted.");
  m.def("gdn_backward",
        [](py::object q, py::object k, py::object v, py::object g, py::object beta, py::object lam,
           py::object dout, py::object form, py::object chunk_size) -> py::dict {
          const GdnOptions opt = to_gdn_options(form, chunk_size);
          const py::array qa = to_ndarray("q", q);
          if (is_float32(qa.dtype())) {
            return gdn_backward_impl<float>(Inputs<float>(qa, k, v, g, lam, beta), dout, opt);
          }
          return gdn_backward_impl<double>(Inputs<double>(qa, k, v, g, lam, beta), dout, opt);
        },
        py::arg("q"), py::arg("k"), py::arg("v"), py::arg("g"), py::arg("beta"), py::arg("lam"),
        py::arg("do"), py::arg("form") = "chunked", py::arg("chunk_size") = 64,
        "Gradients {dq, dk, dv, dg, dbeta, dlam} of sum(do * o) for log-linear Gated DeltaNet, same "
        "layout as the inputs, in the working dtype. Arguments as gdn_forward (help(loglinear)).");
  m.def("level",
        [](py::object t, py::object s) { return level(to_index("t", t), to_index("s", s)); },
        py::arg("t"), py::arg("s"), "Fenwick level of token s seen from t (0 <= s <= t).");
  m.def("num_levels", [](py::object T) { return num_levels(to_index("T", T)); }, py::arg("T"),
        "Levels needed by a sequence of length T >= 1: ceil(log2 T) + 1.");
  m.def("buckets",
        [](py::object t_) {
          const Index t = to_index("t", t_);
          // The last bucket ends at t + 1, which must be an index too.
          if (t == std::numeric_limits<Index>::max()) {
            throw py::value_error("t: expected 0 <= t < 2**63 - 1, got 2**63 - 1");
          }
          std::vector<std::tuple<int, Index, Index>> out;
          for (const auto& b : buckets(t)) out.emplace_back(b.level, b.begin, b.end);
          return out;
        },
        py::arg("t"), "Non-empty Fenwick buckets of [0, t] as (level, begin, end) tuples.");
  m.def("decay_mask",
        [](py::object g_, py::object lam_) {
          const auto g = to_input<double>("g", g_, 1, "[T]");
          const auto lam = to_input<double>("lam", lam_, 2, "[T,L]");
          const Index T = g.shape(0);
          const ConstVectorMap<double> gm(g.data(), T, Eigen::InnerStride<>(1));
          const ConstMatrixMap<double> lm(lam.data(), lam.shape(0), lam.shape(1),
                                          Eigen::OuterStride<>(lam.shape(1)));
          const RowMatrix<double> W = decay_mask(gm, lm);  // validates T, lam's shape and values
          auto out = empty<double, 2>({T, T});
          std::copy(W.data(), W.data() + W.size(), out.mutable_data());
          return out;
        },
        py::arg("g"), py::arg("lam"),
        "The T x T weight matrix W[t,s] = lam[t, level(t,s)] "
        "exp(G_t - G_s) of one head (float64); g [T] (<= 0), lam [T, L] with L >= num_levels(T).");
  py::class_<PyDecoder>(m, "Decoder",
                        "Decoder(B, H, G, K, V): streaming decoder over B x H streams (float64), "
                        "O(L K V) memory each. Sizes are ints >= 1, G divides H; sizes whose state "
                        "cannot fit in memory are refused with ValueError.")
      .def(py::init([](py::object B, py::object H, py::object G, py::object K, py::object V) {
             return PyDecoder(to_index("B", B), to_index("H", H), to_index("G", G), to_index("K", K),
                              to_index("V", V));
           }),
           py::arg("B"), py::arg("H"), py::arg("G"), py::arg("K"), py::arg("V"))
      .def("step", &PyDecoder::step, py::arg("q_t"), py::arg("k_t"), py::arg("v_t"), py::arg("g_t"),
           py::arg("lam_t"), "Consume one token per stream (q_t, k_t [B,G,K]; v_t [B,H,V]; g_t [B,H]; "
           "lam_t [B,H,L]) and return o_t [B,H,V]. Arrays convert as in help(loglinear).")
      .def_property_readonly("tokens", &PyDecoder::tokens, "Tokens consumed so far.")
      .def_property_readonly("state_bytes", &PyDecoder::state_bytes, "Bytes held by the level states.")
      .def("state", &PyDecoder::state, "The per-level states [B,H,num_levels(tokens),K,V].");
#ifdef LOGLINEAR_WITH_CUDA
  m.attr("has_cuda") = true;
  m.def("cuda_available", &loglinear::cuda::device_available, "True if the CUDA backend can run here.");
  m.def("_cuda_workspace_bytes",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object chunk_size,
           py::object precision, bool backward, py::object tokens, py::object cu_seqlens) {
          const DeviceCall c =
              device_call(q, k, v, g, lam, chunk_size, precision, to_index("tokens", tokens), cu_seqlens);
          if (!c.cu.empty()) {
            return cuda::chunked_varlen_workspace_bytes(c.dims, c.opts, c.cu_view(), precision_of(c), backward);
          }
          return cuda::chunked_workspace_bytes(c.dims, c.opts, precision_of(c), backward);
        },
        py::arg("q_shape"), py::arg("k_shape"), py::arg("v_shape"), py::arg("g_shape"), py::arg("lam_shape"),
        py::arg("chunk_size"), py::arg("precision"), py::arg("backward"), py::arg("tokens") = 0,
        py::arg("cu_seqlens") = py::none(),
        "Private (loglinear.torch): device workspace bytes of one chunked call of these shapes (packed "
        "sequences with cu_seqlens, a list of S+1 offsets); checks the shapes and offsets as forward does "
        "(ValueError naming the argument) and the GPU limits.");
  m.def("_cuda_forward_device",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object chunk_size,
           py::object precision, py::sequence ptrs, py::object workspace, py::object workspace_bytes,
           py::object stream, py::object cu_seqlens, py::object cu_seqlens_ptr) {
          DeviceCall c = device_call(q, k, v, g, lam, chunk_size, precision, 0, cu_seqlens);
          c.cu_device = optional_device_ptr<const Index>(cu_seqlens_ptr);
          if (ptrs.size() != 6 && !(ptrs.size() == 8 && !c.cu.empty())) {
            throw std::invalid_argument("ptrs: expected 6 device pointers (q, k, v, g, lam, o), or 8 with cu_seqlens "
                                        "(q, k, v, g, lam, o, 0, final states)");
          }
          if (c.bf16) device_forward<__nv_bfloat16>(c, ptrs, workspace, workspace_bytes, stream);
          else device_forward<float>(c, ptrs, workspace, workspace_bytes, stream);
        },
        py::arg("q_shape"), py::arg("k_shape"), py::arg("v_shape"), py::arg("g_shape"), py::arg("lam_shape"),
        py::arg("chunk_size"), py::arg("precision"), py::arg("ptrs"), py::arg("workspace"),
        py::arg("workspace_bytes"), py::arg("stream"), py::arg("cu_seqlens") = py::none(),
        py::arg("cu_seqlens_ptr") = 0,
        "Private (loglinear.torch): chunked forward on device pointers (q, k, v, g, lam, o), queued on "
        "`stream`; with cu_seqlens (S+1 offsets) the packed sequences in one call, reading the offsets "
        "from cu_seqlens_ptr (the same int64 offsets on the device) when it is not 0, and with 8 pointers "
        "(..., o, 0, final) also every sequence's final state, float32 [S,H,num_levels(longest),K,V]. "
        "q, k, v, o in the precision's storage type, g and lam float32. The caller guarantees that the pointers hold "
        "contiguous tensors of these shapes on the current device.");
  m.def("_cuda_backward_device",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object chunk_size,
           py::object precision, py::sequence ptrs, py::object workspace, py::object workspace_bytes,
           py::object stream, py::object cu_seqlens, py::object cu_seqlens_ptr) {
          DeviceCall c = device_call(q, k, v, g, lam, chunk_size, precision, 0, cu_seqlens);
          c.cu_device = optional_device_ptr<const Index>(cu_seqlens_ptr);
          if (ptrs.size() != 11) {
            throw std::invalid_argument("ptrs: expected 11 device pointers (q, k, v, g, lam, do, dq, dk, dv, dg, dlam)");
          }
          if (c.bf16) device_backward<__nv_bfloat16>(c, ptrs, workspace, workspace_bytes, stream);
          else device_backward<float>(c, ptrs, workspace, workspace_bytes, stream);
        },
        py::arg("q_shape"), py::arg("k_shape"), py::arg("v_shape"), py::arg("g_shape"), py::arg("lam_shape"),
        py::arg("chunk_size"), py::arg("precision"), py::arg("ptrs"), py::arg("workspace"),
        py::arg("workspace_bytes"), py::arg("stream"), py::arg("cu_seqlens") = py::none(),
        py::arg("cu_seqlens_ptr") = 0,
        "Private (loglinear.torch): chunked backward on device pointers (q, k, v, g, lam, do, dq, dk, dv, "
        "dg, dlam), queued on `stream` (packed sequences with cu_seqlens); dg, dlam float32, the others in "
        "the precision's storage type.");
  m.def("_cuda_forward_state_device",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object chunk_size,
           py::object precision, py::object tokens, py::sequence ptrs, py::object workspace,
           py::object workspace_bytes, py::object stream) {
          const DeviceCall c = device_call(q, k, v, g, lam, chunk_size, precision, to_index("tokens", tokens));
          if (ptrs.size() != 8) {
            throw std::invalid_argument("ptrs: expected 8 device pointers (q, k, v, g, lam, o, initial, final)");
          }
          if (c.bf16) device_forward<__nv_bfloat16>(c, ptrs, workspace, workspace_bytes, stream);
          else device_forward<float>(c, ptrs, workspace, workspace_bytes, stream);
        },
        py::arg("q_shape"), py::arg("k_shape"), py::arg("v_shape"), py::arg("g_shape"), py::arg("lam_shape"),
        py::arg("chunk_size"), py::arg("precision"), py::arg("tokens"), py::arg("ptrs"), py::arg("workspace"),
        py::arg("workspace_bytes"), py::arg("stream"),
        "Private (loglinear.torch): chunked forward on device pointers continuing `tokens` earlier tokens: "
        "(q, k, v, g, lam, o, initial, final), the last two float32 [B,H,levels,K,V] or 0 (none).");
  m.def("_cuda_backward_state_device",
        [](py::object q, py::object k, py::object v, py::object g, py::object lam, py::object chunk_size,
           py::object precision, py::object tokens, py::sequence ptrs, py::object workspace,
           py::object workspace_bytes, py::object stream) {
          const DeviceCall c = device_call(q, k, v, g, lam, chunk_size, precision, to_index("tokens", tokens));
          if (ptrs.size() != 14) {
            throw std::invalid_argument("ptrs: expected 14 device pointers (q, k, v, g, lam, do, dq, dk, dv, dg, "
                                        "dlam, initial, d_final, d_initial)");
          }
          if (c.bf16) device_backward<__nv_bfloat16>(c, ptrs, workspace, workspace_bytes, stream);
          else device_backward<float>(c, ptrs, workspace, workspace_bytes, stream);
        },
        py::arg("q_shape"), py::arg("k_shape"), py::arg("v_shape"), py::arg("g_shape"), py::arg("lam_shape"),
        py::arg("chunk_size"), py::arg("precision"), py::arg("tokens"), py::arg("ptrs"), py::arg("workspace"),
        py::arg("workspace_bytes"), py::arg("stream"),
        "Private (loglinear.torch): the stateful chunked backward on device pointers; initial, d_final and "
        "d_initial float32 or 0 (none).");
  m.def("_cuda_decode_device",
        [](py::object B, py::object H, py::object G, py::object K, py::object V, py::object L, py::object Lmax,
           py::object tokens, py::sequence ptrs, py::object stream, py::object stream_tokens,
           py::object padding_is_zero) {
          const cuda::DecodeDims d{to_index("B", B), to_index("H", H), to_index("G", G), to_index("K", K),
                                   to_index("V", V), to_index("L", L), to_index("Lmax", Lmax)};
          if (ptrs.size() != 7) {
            throw std::invalid_argument("ptrs: expected 7 device pointers (state, q_t, k_t, v_t, g_t, lam_t, o_t)");
          }
          auto* state = device_ptr<float>("state", ptrs[0]);
          const auto *q = device_ptr<const float>("q_t", ptrs[1]), *k = device_ptr<const float>("k_t", ptrs[2]),
                     *v = device_ptr<const float>("v_t", ptrs[3]), *g = device_ptr<const float>("g_t", ptrs[4]),
                     *lam = device_ptr<const float>("lam_t", ptrs[5]);
          auto* o = device_ptr<float>("o_t", ptrs[6]);
          const auto s = reinterpret_cast<cudaStream_t>(stream.cast<std::uintptr_t>());
          if (stream_tokens.is_none()) {
            cuda::decode_step_device(d, state, to_index("tokens", tokens), q, k, v, g, lam, o, s);
          } else {  // a ragged batch: `tokens` is the largest count, stream_tokens the B counts (int64)
            cuda::decode_step_device_ragged(d, state, to_index("tokens", tokens),
                                            device_ptr<const std::int64_t>("stream_tokens", stream_tokens), q, k,
                                            v, g, lam, o, s, padding_is_zero.cast<bool>());
          }
        },
        py::arg("B"), py::arg("H"), py::arg("G"), py::arg("K"), py::arg("V"), py::arg("L"), py::arg("Lmax"),
        py::arg("tokens"), py::arg("ptrs"), py::arg("stream"), py::arg("stream_tokens") = py::none(),
        py::arg("padding_is_zero") = false,
        "Private (loglinear.torch): one recurrent decoding step on device pointers (state [B,H,Lmax,K,V] "
        "updated in place, q_t, k_t [B,G,K], v_t [B,H,V], g_t [B,H], lam_t [B,H,L], o_t [B,H,V]; all "
        "float32, contiguous), queued on `stream`; the sizes are checked as cuda::decode_step_device does. "
        "stream_tokens: None (every stream after `tokens` tokens) or a device pointer to B int64 counts, "
        "each in [0, tokens] (a ragged batch: cuda::decode_step_device_ragged); padding_is_zero: the "
        "state's levels above each stream's live ones are kept zero by the caller (not written).");
#else
  m.attr("has_cuda") = false;
  m.def("cuda_available", [] { return false; }, "True if the CUDA backend can run here.");
#endif
}
