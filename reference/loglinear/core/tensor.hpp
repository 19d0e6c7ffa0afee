// Tensor views and owning tensors: the one place where [B,T,H,D] index arithmetic lives.
// Every public function of loglinear takes its arrays as TensorView (a pointer plus a shape,
// contiguous row-major, "time-first" as in PyTorch / flash-linear-attention, SPEC.md §1) and
// looks at one (batch, head) through the strided Eigen maps below, never through copies.
/// \file
/// \brief Tensor views and owning tensors
/// \ingroup floor_core
#pragma once

#include <Eigen/Core>

#include <array>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

namespace loglinear {

/// Signed index type used for every size and index (matches Eigen::Index).
using Index = std::int64_t;

/// Shape of a rank-N tensor, outermost dimension first.
template <int Rank>
using Shape = std::array<Index, Rank>;

/// Formats a shape as "[2,128,4,8]" for error messages.
template <int Rank>
std::string shape_string(const Shape<Rank>& shape) {
  std::string out = "[";
  for (int i = 0; i < Rank; ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

/// Number of elements of a shape (product of its extents).
template <int Rank>
Index shape_size(const Shape<Rank>& shape) {
  return std::accumulate(shape.begin(), shape.end(), Index{1}, std::multiplies<Index>());
}

/// Non-owning view of a contiguous row-major tensor.
///
/// @tparam T     element type; `const Scalar` for inputs, `Scalar` for outputs.
/// @tparam Rank  number of dimensions.
/// The view never allocates or frees; the caller keeps the memory alive.
template <class T, int Rank>
struct TensorView {
  T* data = nullptr;     ///< first element (row-major, last index fastest)
  Shape<Rank> shape{};   ///< extents, outermost first

  /// Total number of elements.
  Index size() const { return shape_size<Rank>(shape); }
  /// Extent of dimension `i`.
  Index dim(int i) const { return shape[i]; }
  /// Row-major linear offset of a full multi-index.
  template <class... Is>
  Index offset(Is... is) const {
    static_assert(sizeof...(Is) == Rank, "offset needs one index per dimension");
    const Index idx[] = {static_cast<Index>(is)...};
    Index off = 0;
    for (int i = 0; i < Rank; ++i) off = off * shape[i] + idx[i];
    return off;
  }
  /// Element at a full multi-index.
  template <class... Is>
  T& operator()(Is... is) const { return data[offset(is...)]; }
  /// Implicit conversion of a mutable view to a read-only one (only defined for mutable views).
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  operator TensorView<const U, Rank>() const { return {data, shape}; }
};

/// Read-only view.
template <class Scalar, int Rank>
using ConstTensorView = TensorView<const Scalar, Rank>;

/// Owning contiguous row-major tensor (a std::vector plus a shape); zero-initialised.
template <class Scalar, int Rank>
class Tensor {
 public:
  Tensor() = default;
  /// Allocates `shape` elements, all zero.
  explicit Tensor(const Shape<Rank>& shape) : shape_(shape), data_(shape_size<Rank>(shape)) {}

  /// Mutable view of the whole tensor.
  TensorView<Scalar, Rank> view() { return {data_.data(), shape_}; }
  /// Read-only view of the whole tensor.
  ConstTensorView<Scalar, Rank> view() const { return {data_.data(), shape_}; }
  /// Implicit conversion so a Tensor can be passed where a mutable view is expected.
  operator TensorView<Scalar, Rank>() { return view(); }
  /// Implicit conversion so a Tensor can be passed where a read-only view is expected.
  operator ConstTensorView<Scalar, Rank>() const { return view(); }

  /// Element access by full multi-index.
  template <class... Is>
  Scalar& operator()(Is... is) { return view()(is...); }
  /// Element access by full multi-index (read-only).
  template <class... Is>
  const Scalar& operator()(Is... is) const { return view()(is...); }

  Scalar* data() { return data_.data(); }              ///< first element
  const Scalar* data() const { return data_.data(); }  ///< first element
  Index size() const { return static_cast<Index>(data_.size()); }  ///< number of elements
  const Shape<Rank>& shape() const { return shape_; }  ///< extents
  Index dim(int i) const { return shape_[i]; }          ///< extent of dimension i
  std::vector<Scalar>& values() { return data_; }       ///< storage, for element-wise loops
  const std::vector<Scalar>& values() const { return data_; }  ///< storage (read-only)

 private:
  Shape<Rank> shape_{};
  std::vector<Scalar> data_;
};

/// Row-major dynamic matrix, the layout of every per-head slice.
template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Dynamic column vector.
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Strided map of a [T, D] slice of a [B,T,X,D] tensor: rows are `X*D` elements apart.
template <class Scalar>
using ConstMatrixMap = Eigen::Map<const RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;
/// Mutable counterpart of ConstMatrixMap.
template <class Scalar>
using MatrixMap = Eigen::Map<RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;
/// Strided map of a [T] slice of a [B,T,H] tensor: entries are `H` elements apart.
template <class Scalar>
using ConstVectorMap = Eigen::Map<const Vector<Scalar>, 0, Eigen::InnerStride<>>;
/// Mutable counterpart of ConstVectorMap.
template <class Scalar>
using VectorMap = Eigen::Map<Vector<Scalar>, 0, Eigen::InnerStride<>>;

/// The [T, D] matrix of batch `b`, slot `x` of a [B,T,X,D] tensor (a query group or a head).
template <class Scalar>
ConstMatrixMap<Scalar> slice_bt(ConstTensorView<Scalar, 4> t, Index b, Index x) {
  const Index T = t.shape[1], X = t.shape[2], D = t.shape[3];
  return ConstMatrixMap<Scalar>(t.data + (b * T * X + x) * D, T, D, Eigen::OuterStride<>(X * D));
}
/// Mutable counterpart of slice_bt.
template <class Scalar>
MatrixMap<Scalar> slice_bt(TensorView<Scalar, 4> t, Index b, Index x) {
  const Index T = t.shape[1], X = t.shape[2], D = t.shape[3];
  return MatrixMap<Scalar>(t.data + (b * T * X + x) * D, T, D, Eigen::OuterStride<>(X * D));
}
/// The [T] vector of batch `b`, head `h` of a [B,T,H] tensor.
template <class Scalar>
ConstVectorMap<Scalar> slice_bt(ConstTensorView<Scalar, 3> t, Index b, Index h) {
  const Index T = t.shape[1], H = t.shape[2];
  return ConstVectorMap<Scalar>(t.data + b * T * H + h, T, Eigen::InnerStride<>(H));
}
/// Mutable counterpart of slice_bt for [B,T,H] tensors.
template <class Scalar>
VectorMap<Scalar> slice_bt(TensorView<Scalar, 3> t, Index b, Index h) {
  const Index T = t.shape[1], H = t.shape[2];
  return VectorMap<Scalar>(t.data + b * T * H + h, T, Eigen::InnerStride<>(H));
}

}  // namespace loglinear
