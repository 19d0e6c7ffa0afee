// Token embedding (embedding.hpp), forward then backward: a gather of table rows and the
// scatter-add that differentiates it. Serial on purpose: the scatter collides whenever an id
// repeats, and at O(N d) it is never the cost that matters next to the mixers.
#include <loglinear/nn/embedding.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::nn {
namespace {
std::string shape(Index r, Index c) { return "[" + std::to_string(r) + "," + std::to_string(c) + "]"; }

// Every id must index a row of the table: an id out of range would read or write out of bounds.
void check_tokens(const std::vector<std::int32_t>& tokens, Index vocab) {
  for (std::size_t n = 0; n < tokens.size(); ++n)
    if (tokens[n] < 0 || tokens[n] >= vocab)
      throw std::invalid_argument("tokens: expected ids in [0, " + std::to_string(vocab) + "), got " +
                                  std::to_string(tokens[n]) + " at " + std::to_string(n));
}
}  // namespace

template <class Scalar>
RowMatrix<Scalar> embedding_forward(const std::vector<std::int32_t>& tokens, const RowMatrix<Scalar>& table) {
  check_tokens(tokens, table.rows());
  RowMatrix<Scalar> x(Index(tokens.size()), table.cols());
  for (std::size_t n = 0; n < tokens.size(); ++n) x.row(Index(n)) = table.row(tokens[n]);
  return x;
}

template <class Scalar>
void embedding_backward(const std::vector<std::int32_t>& tokens, const RowMatrix<Scalar>& dx,
                        RowMatrix<Scalar>& dtable) {
  if (dx.rows() != Index(tokens.size()) || dx.cols() != dtable.cols())
    throw std::invalid_argument("dx: expected shape [N, d] = " + shape(Index(tokens.size()), dtable.cols()) +
                                ", got " + shape(dx.rows(), dx.cols()));
  check_tokens(tokens, dtable.rows());
  // forward: x[n] = table[tokens[n]], hence dtable[tokens[n]] += dx[n]; a repeated id accumulates.
  for (std::size_t n = 0; n < tokens.size(); ++n) dtable.row(tokens[n]) += dx.row(Index(n));
}

#define LOGLINEAR_INSTANTIATE(S)                                                                        \
  template RowMatrix<S> embedding_forward<S>(const std::vector<std::int32_t>&, const RowMatrix<S>&); \
  template void embedding_backward<S>(const std::vector<std::int32_t>&, const RowMatrix<S>&, RowMatrix<S>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)
#undef LOGLINEAR_INSTANTIATE

}  // namespace loglinear::nn
