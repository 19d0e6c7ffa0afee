// nn/linear: y = x W^T against central differences in double (the backward adds into dW) and
// against a dot product written in the test.
#include <loglinear/nn/linear.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::test;
using Mat = RowMatrix<double>;

TEST_CASE("linear: dx and dW match central differences, dW is added to", "[nn][linear][fd]") {
  const Index N = GENERATE(1, 5), in = 4, out = 3;
  CAPTURE(N, in, out);
  Mat x = random_matrix(N, in, 1), W = random_matrix(out, in, 2);
  const Mat dy = random_matrix(N, out, 3), dW0 = random_matrix(out, in, 4);
  Mat dW = dW0;
  const Mat dx = nn::linear_backward(x, W, dy, dW);
  const Mat dW_added = dW - dW0;  // the backward ADDS into dW; what it added is the gradient
  auto loss = [&] { return weighted_sum(nn::linear_forward(x, W), dy); };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dW", W.data(), dW_added.data(), dW_added.size(), loss));
}

TEST_CASE("linear: y_n[o] is the dot product of row o of W with x_n", "[nn][linear][oracle]") {
  const Mat x = random_matrix(3, 4, 5), W = random_matrix(2, 4, 6);
  const Mat y = nn::linear_forward(x, W);
  REQUIRE(y.rows() == 3);
  REQUIRE(y.cols() == 2);
  for (Index n = 0; n < 3; ++n)
    for (Index o = 0; o < 2; ++o) {
      double dot = 0;
      for (Index i = 0; i < 4; ++i) dot += W(o, i) * x(n, i);
      CHECK(std::abs(y(n, o) - dot) <= 1e-14);  // four products summed in another order
    }
}
