// nn/cross_entropy: the gradient against central finite differences, the label mask, log(vocab)
// at uniform logits.
#include <loglinear/nn/cross_entropy.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Mat = RowMatrix<double>;

TEST_CASE("cross_entropy: the gradient matches finite differences and skips unscored rows",
          "[cross_entropy][fd]") {
  Mat logits = random_matrix(6, 5, 7, 2.0);
  const std::int32_t targets[6] = {1, -1, 4, 0, -1, 2};
  Mat dlogits;
  Index correct = 0;
  cross_entropy<double>(logits, targets, &dlogits, &correct);
  auto L = [&] { return cross_entropy<double>(logits, targets, nullptr); };
  const auto r = gradcheck("dlogits", logits.data(), dlogits.data(), logits.size(), L);
  INFO(r.report());
  CHECK(r.max_rel <= 1e-6);
  CHECK(dlogits.row(1).isZero(0));
  CHECK(dlogits.row(4).isZero(0));
  // Uniform logits: the loss is log(vocab) exactly.
  const Mat flat = Mat::Zero(6, 5);
  CHECK(std::abs(cross_entropy<double>(flat, targets, nullptr) - std::log(5.0)) < 1e-14);
}

