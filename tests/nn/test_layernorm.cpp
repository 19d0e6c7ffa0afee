// nn/layernorm: the backward against central finite differences in double.
#include <loglinear/nn/layernorm.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::test;
using Mat = RowMatrix<double>;

namespace {
// Sum of w ⊙ y: a loss whose gradient w.r.t. y is w.
double weighted(const Mat& y, const Mat& w) { return y.cwiseProduct(w).sum(); }
}  // namespace

TEST_CASE("layernorm: LayerNorm backward matches finite differences", "[layernorm][fd]") {
  Mat x = random_matrix(5, 7, 1), gamma = random_matrix(1, 7, 2), beta = random_matrix(1, 7, 3);
  const Mat w = random_matrix(5, 7, 4);
  LayerNormCache<double> cache;
  auto L = [&] { LayerNormCache<double> c; return weighted(layernorm_forward<double>(x, gamma, beta, c), w); };
  layernorm_forward<double>(x, gamma, beta, cache);
  Mat dgamma = Mat::Zero(1, 7), dbeta = Mat::Zero(1, 7);
  const Mat dx = layernorm_backward<double>(w, gamma, cache, dgamma, dbeta);
  for (const auto& r : {gradcheck("dx", x.data(), dx.data(), x.size(), L),
                        gradcheck("dgamma", gamma.data(), dgamma.data(), 7, L),
                        gradcheck("dbeta", beta.data(), dbeta.data(), 7, L)}) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

