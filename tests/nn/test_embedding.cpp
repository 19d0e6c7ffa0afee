// nn/embedding: the table gradient against central differences in double (repeated ids
// accumulate, absent ids get nothing), the gather as an independent oracle in float and double,
// and the error messages.
#include <loglinear/nn/embedding.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdint>
#include <vector>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

TEST_CASE("embedding: dtable matches central differences, repeated ids accumulate", "[nn][embedding][fd]") {
  const Index vocab = 6, d = 3;
  // Id 2 repeats three times (its gradient is a sum of three rows); ids 0 and 5 never occur.
  const std::vector<std::int32_t> tokens = {2, 4, 2, 1, 3, 2, 4};
  const Index N = Index(tokens.size());
  CAPTURE(vocab, d, N);
  Mat table = random_matrix(vocab, d, 9);
  const Mat dx = random_matrix(N, d, 10), dtable0 = random_matrix(vocab, d, 11);
  Mat dtable = dtable0;
  embedding_backward(tokens, dx, dtable);
  const Mat dtable_added = dtable - dtable0;  // the backward ADDS into dtable
  auto loss = [&] { return weighted_sum(embedding_forward(tokens, table), dx); };
  CHECK_FD(gradcheck("dtable", table.data(), dtable_added.data(), dtable_added.size(), loss));
  // Rows of ids that do not occur receive exactly nothing.
  CHECK(dtable.row(0) == dtable0.row(0));
  CHECK(dtable.row(5) == dtable0.row(5));
}

TEST_CASE("embedding: row n of the output is the table row of token n, in float and double",
          "[nn][embedding][oracle]") {
  const Mat table = random_matrix(5, 4, 12);
  const std::vector<std::int32_t> tokens = {4, 0, 0, 3};
  const Mat x = embedding_forward(tokens, table);
  const RowMatrix<float> xf = embedding_forward<float>(tokens, table.cast<float>());
  REQUIRE(x.rows() == 4);
  REQUIRE(x.cols() == 4);
  for (Index n = 0; n < 4; ++n) {
    CHECK(x.row(n) == table.row(tokens[std::size_t(n)]));  // a copy: bit for bit
    CHECK(xf.row(n) == table.row(tokens[std::size_t(n)]).cast<float>());
  }
}

TEST_CASE("embedding: bad ids and shapes throw std::invalid_argument naming the argument",
          "[nn][embedding][errors]") {
  const Mat table = Mat::Zero(5, 3);
  CHECK_THROWS_WITH(embedding_forward<double>({1, 5}, table), ContainsSubstring("tokens: expected ids in [0, 5), got 5 at 1"));
  CHECK_THROWS_WITH(embedding_forward<double>({-1}, table), ContainsSubstring("tokens: expected ids in [0, 5), got -1 at 0"));
  Mat dtable = Mat::Zero(5, 3);
  CHECK_THROWS_WITH(embedding_backward<double>({1, 2}, Mat(Mat::Zero(3, 3)), dtable),
                    ContainsSubstring("dx: expected shape [N, d] = [2,3], got [3,3]"));
  CHECK_THROWS_WITH(embedding_backward<double>({1, 2}, Mat(Mat::Zero(2, 4)), dtable),
                    ContainsSubstring("dx: expected shape [N, d] = [2,3], got [2,4]"));
  CHECK_THROWS_WITH(embedding_backward<double>({1, 7}, Mat(Mat::Zero(2, 3)), dtable),
                    ContainsSubstring("tokens: expected ids in [0, 5), got 7 at 1"));
  CHECK(dtable == Mat::Zero(5, 3));  // nothing was written before the throw
}
