// nn/swiglu (SPEC.md §8): the SwiGLU MLP against central differences in double for the input and
// every weight, and the error messages.
#include <loglinear/nn/swiglu.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

TEST_CASE("swiglu: dx and every weight gradient match central differences", "[nn][swiglu][fd]") {
  const Index N = 4, d = 3, hidden = 8;
  Mat x = random_matrix(N, d, 16), Wg = random_matrix(hidden, d, 17), Wu = random_matrix(hidden, d, 18),
      Wd = random_matrix(d, hidden, 19);
  const Mat dy = random_matrix(N, d, 20);
  SwiGluCache<double> cache;
  swiglu_forward(x, Wg, Wu, Wd, cache);
  Mat dWg = Mat::Zero(hidden, d), dWu = Mat::Zero(hidden, d), dWd = Mat::Zero(d, hidden);
  const Mat dx = swiglu_backward(dy, Wg, Wu, Wd, cache, dWg, dWu, dWd);
  auto loss = [&] {
    SwiGluCache<double> c;
    return weighted_sum(swiglu_forward(x, Wg, Wu, Wd, c), dy);
  };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dW_gate", Wg.data(), dWg.data(), dWg.size(), loss));
  CHECK_FD(gradcheck("dW_up", Wu.data(), dWu.data(), dWu.size(), loss));
  CHECK_FD(gradcheck("dW_down", Wd.data(), dWd.data(), dWd.size(), loss));
}

TEST_CASE("swiglu: bad shapes throw std::invalid_argument naming the argument", "[nn][swiglu][errors]") {
  const Mat x = Mat::Zero(4, 6);
  SwiGluCache<double> sc;
  const Mat Wg = Mat::Zero(8, 6), Wd = Mat::Zero(6, 8);
  CHECK_THROWS_WITH(swiglu_forward(x, Mat(Mat::Zero(8, 5)), Wg, Wd, sc), ContainsSubstring("W_gate: expected shape [hidden, d] with d = 6"));
  CHECK_THROWS_WITH(swiglu_forward(x, Wg, Mat(Mat::Zero(7, 6)), Wd, sc), ContainsSubstring("W_up: expected shape [hidden, d] = [8,6]"));
  CHECK_THROWS_WITH(swiglu_forward(x, Wg, Wg, Mat(Mat::Zero(6, 7)), sc), ContainsSubstring("W_down: expected shape [d, hidden] = [6,8]"));
}
