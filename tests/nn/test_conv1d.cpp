// nn/conv1d (SPEC.md §8): the causal depthwise convolution against central differences in double
// for the input, the taps and the bias, a one-hot tap as an independent oracle (a shift by one
// tap, no leak across the batch), float against double, and the error messages.
#include <loglinear/nn/conv1d.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

TEST_CASE("conv1d: dx, dw and dbias match central differences", "[nn][conv1d][fd]") {
  const Index B = 2, T = GENERATE(1, 3, 7), C = 3, W = 4;
  CAPTURE(B, T, C, W);
  Mat x = random_matrix(B * T, C, 11), w = random_matrix(C, W, 12), bias = random_matrix(1, C, 13);
  const Mat dy = random_matrix(B * T, C, 14);
  Mat dw = Mat::Zero(C, W), dbias = Mat::Zero(1, C);
  const Mat dx = conv1d_backward(x, B, w, dy, dw, dbias);
  auto loss = [&] { return weighted_sum(conv1d_forward(x, B, w, bias), dy); };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dw", w.data(), dw.data(), dw.size(), loss));
  CHECK_FD(gradcheck("dbias", bias.data(), dbias.data(), dbias.size(), loss));
}

TEST_CASE("conv1d: a one-hot tap delays by W-1-j steps and never reads the previous sequence",
          "[nn][conv1d][oracle]") {
  const Index B = 2, T = 5, C = 2, W = 4;
  const Mat x = random_matrix(B * T, C, 15);
  for (Index j = 0; j < W; ++j) {
    CAPTURE(j);
    Mat w = Mat::Zero(C, W);
    w.col(j).setOnes();
    const Mat y = conv1d_forward(x, B, w, Mat(Mat::Zero(1, C)));
    const Index delay = W - 1 - j;
    for (Index b = 0; b < B; ++b)
      for (Index t = 0; t < T; ++t)
        for (Index c = 0; c < C; ++c)
          CHECK(y(b * T + t, c) == (t >= delay ? x(b * T + t - delay, c) : 0.0));
  }
}

TEST_CASE("conv1d: float agrees with double", "[nn][conv1d][property]") {
  const Mat x = random_matrix(6, 4, 21), w = random_matrix(1, 4, 22), cw = random_matrix(4, 4, 23);
  // 1e-5: float rounding of O(1) values through a handful of operations.
  CHECK((conv1d_forward<float>(x.cast<float>(), 2, cw.cast<float>(), w.cast<float>()).cast<double>() -
         conv1d_forward(x, 2, cw, w))
            .cwiseAbs()
            .maxCoeff() <= 1e-5);
}

TEST_CASE("conv1d: bad shapes throw std::invalid_argument naming the argument", "[nn][conv1d][errors]") {
  const Mat x = Mat::Zero(4, 6);
  CHECK_THROWS_WITH(conv1d_forward(x, 3, Mat(Mat::Zero(6, 4)), Mat(Mat::Zero(1, 6))), ContainsSubstring("x: expected shape [B*T, C] with rows divisible by B = 3"));
  CHECK_THROWS_WITH(conv1d_forward(x, 2, Mat(Mat::Zero(5, 4)), Mat(Mat::Zero(1, 6))), ContainsSubstring("w: expected shape [C, W] with C = 6"));
  CHECK_THROWS_WITH(conv1d_forward(x, 2, Mat(Mat::Zero(6, 4)), Mat(Mat::Zero(1, 5))), ContainsSubstring("bias: expected shape [1, C] = [1,6]"));
  Mat cdw = Mat::Zero(6, 4), cdb = Mat::Zero(1, 6);
  CHECK_THROWS_WITH(conv1d_backward(x, 2, Mat(Mat::Zero(6, 4)), Mat(Mat::Zero(2, 6)), cdw, cdb), ContainsSubstring("dy: expected the shape of x [4,6]"));
}
