// nn layers (reference/loglinear/nn/, SPEC.md §8): RMSNorm (plain and per group), gated RMSNorm,
// causal depthwise conv1d, SiLU and the SwiGLU MLP, each against central differences in double
// for every input and parameter, plus independent oracles (shift by one tap, no leak across the
// batch, RMS of the output) and the error messages.
#include <loglinear/core/activations.hpp>
#include <loglinear/nn/conv1d.hpp>
#include <loglinear/nn/rmsnorm.hpp>
#include <loglinear/nn/swiglu.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <random>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;


TEST_CASE("rmsnorm: dx and dw match central differences, per group too", "[nn][rmsnorm][fd]") {
  const Index groups = GENERATE(1, 2);
  const Index N = 5, d = 6;
  CAPTURE(groups, N, d);
  Mat x = random_matrix(N, d, 1), w = random_matrix(1, d, 2), dy = random_matrix(N, d, 3);
  RmsNormCache<double> cache;
  rmsnorm_forward(x, w, cache, groups);
  Mat dw = Mat::Zero(1, d);
  const Mat dx = rmsnorm_backward(dy, w, cache, dw);
  auto loss = [&] {
    RmsNormCache<double> c;
    return weighted_sum(rmsnorm_forward(x, w, c, groups), dy);
  };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dw", w.data(), dw.data(), dw.size(), loss));
}

TEST_CASE("rmsnorm: each group of the output has unit RMS when w = 1", "[nn][rmsnorm][oracle]") {
  const Mat x = random_matrix(3, 8, 4, 5.0);
  RmsNormCache<double> cache;
  const Mat y = rmsnorm_forward(x, Mat(Mat::Ones(1, 8)), cache, 2, 0.0);
  for (Index n = 0; n < 3; ++n)
    for (Index gr = 0; gr < 2; ++gr)
      CHECK(std::abs(y.row(n).segment(gr * 4, 4).squaredNorm() / 4 - 1) <= 1e-14);  // a few roundings
}

TEST_CASE("gated_rmsnorm: dx, dz and dw match central differences", "[nn][rmsnorm][fd]") {
  const Index N = 4, d = 6, groups = GENERATE(1, 3);
  CAPTURE(groups);
  Mat x = random_matrix(N, d, 5), z = random_matrix(N, d, 6, 2.0), w = random_matrix(1, d, 7);
  const Mat dy = random_matrix(N, d, 8);
  GatedRmsNormCache<double> cache;
  gated_rmsnorm_forward(x, z, w, cache, groups);
  Mat dw = Mat::Zero(1, d), dx, dz;
  gated_rmsnorm_backward(dy, w, cache, dw, dx, dz);
  auto loss = [&] {
    GatedRmsNormCache<double> c;
    return weighted_sum(gated_rmsnorm_forward(x, z, w, c, groups), dy);
  };
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), loss));
  CHECK_FD(gradcheck("dz", z.data(), dz.data(), dz.size(), loss));
  CHECK_FD(gradcheck("dw", w.data(), dw.data(), dw.size(), loss));
}

TEST_CASE("silu: derivative matches central differences, finite for |x| = 1e3", "[nn][silu][fd]") {
  Mat x = random_matrix(3, 5, 9, 3.0);
  const Mat dy = random_matrix(3, 5, 10);
  const Mat dx = silu_backward(x, dy);
  CHECK_FD(gradcheck("dx", x.data(), dx.data(), dx.size(), [&] { return weighted_sum(silu_forward(x), dy); }));
  CHECK(silu(-1e3) == 0.0);
  CHECK(silu(1e3) == 1e3);
  CHECK(std::isfinite(silu_grad(-1e3)));
}

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

TEST_CASE("nn layers: float agrees with double", "[nn][property]") {
  const Mat x = random_matrix(6, 4, 21), w = random_matrix(1, 4, 22), cw = random_matrix(4, 4, 23);
  RmsNormCache<double> cd;
  RmsNormCache<float> cf;
  // 1e-5: float rounding of O(1) values through a handful of operations.
  CHECK((rmsnorm_forward<float>(x.cast<float>(), w.cast<float>(), cf).cast<double>() - rmsnorm_forward(x, w, cd))
            .cwiseAbs()
            .maxCoeff() <= 1e-5);
  CHECK((conv1d_forward<float>(x.cast<float>(), 2, cw.cast<float>(), w.cast<float>()).cast<double>() -
         conv1d_forward(x, 2, cw, w))
            .cwiseAbs()
            .maxCoeff() <= 1e-5);
}

TEST_CASE("nn layers: bad shapes throw std::invalid_argument naming the argument", "[nn][errors]") {
  const Mat x = Mat::Zero(4, 6);
  RmsNormCache<double> c;
  CHECK_THROWS_WITH(rmsnorm_forward(x, Mat(Mat::Ones(1, 5)), c), ContainsSubstring("w: expected shape [1, d] = [1,6], got [1,5]"));
  CHECK_THROWS_WITH(rmsnorm_forward(x, Mat(Mat::Ones(1, 6)), c, 4), ContainsSubstring("groups: expected a divisor of d = 6, got 4"));
  rmsnorm_forward(x, Mat(Mat::Ones(1, 6)), c);
  Mat dw = Mat::Zero(1, 6);
  CHECK_THROWS_WITH(rmsnorm_backward(Mat(Mat::Zero(3, 6)), Mat(Mat::Ones(1, 6)), c, dw), ContainsSubstring("dy: expected the forward's shape [4,6]"));
  GatedRmsNormCache<double> gc;
  CHECK_THROWS_WITH(gated_rmsnorm_forward(x, Mat(Mat::Zero(4, 5)), Mat(Mat::Ones(1, 6)), gc), ContainsSubstring("z: expected the shape of x [4,6]"));
  CHECK_THROWS_WITH(conv1d_forward(x, 3, Mat(Mat::Zero(6, 4)), Mat(Mat::Zero(1, 6))), ContainsSubstring("x: expected shape [B*T, C] with rows divisible by B = 3"));
  CHECK_THROWS_WITH(conv1d_forward(x, 2, Mat(Mat::Zero(5, 4)), Mat(Mat::Zero(1, 6))), ContainsSubstring("w: expected shape [C, W] with C = 6"));
  CHECK_THROWS_WITH(conv1d_forward(x, 2, Mat(Mat::Zero(6, 4)), Mat(Mat::Zero(1, 5))), ContainsSubstring("bias: expected shape [1, C] = [1,6]"));
  Mat cdw = Mat::Zero(6, 4), cdb = Mat::Zero(1, 6);
  CHECK_THROWS_WITH(conv1d_backward(x, 2, Mat(Mat::Zero(6, 4)), Mat(Mat::Zero(2, 6)), cdw, cdb), ContainsSubstring("dy: expected the shape of x [4,6]"));
  SwiGluCache<double> sc;
  const Mat Wg = Mat::Zero(8, 6), Wd = Mat::Zero(6, 8);
  CHECK_THROWS_WITH(swiglu_forward(x, Mat(Mat::Zero(8, 5)), Wg, Wd, sc), ContainsSubstring("W_gate: expected shape [hidden, d] with d = 6"));
  CHECK_THROWS_WITH(swiglu_forward(x, Wg, Mat(Mat::Zero(7, 6)), Wd, sc), ContainsSubstring("W_up: expected shape [hidden, d] = [8,6]"));
  CHECK_THROWS_WITH(swiglu_forward(x, Wg, Wg, Mat(Mat::Zero(6, 7)), sc), ContainsSubstring("W_down: expected shape [d, hidden] = [6,8]"));
}
