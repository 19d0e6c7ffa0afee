// The three forward forms agree with each other on random inputs (SPEC.md §13):
// naive (definition) vs recurrent vs chunked, float and double, over odd sizes.
#include <loglinear/attention/forms.hpp>

#include "../support/compare.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <omp.h>

using namespace loglinear;
using namespace loglinear::test;

namespace {

template <class Scalar>
Tensor<Scalar, 4> run(Form form, const OwnedInputs<Scalar>& in, Index C) {
  Tensor<Scalar, 4> o(in.v.shape());
  forward<Scalar>(form, in.view(), ChunkedOptions{C}, o);
  return o;
}

}  // namespace

TEST_CASE("forms: naive, recurrent and chunked agree in double to 1e-10", "[forms][cross]") {
  const Index T = GENERATE(1, 2, 3, 5, 8, 17, 64, 100, 257, 1000);
  const Index C = GENERATE(1, 4, 16, 64, 2048);
  const auto [H, G] = GENERATE(table<Index, Index>({{3, 3}, {4, 2}, {2, 1}}));
  const Sizes s{2, T, H, G, 5, 3};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), C, seed);
  const auto in = random_inputs<double>(s, seed);
  const auto o_naive = run(Form::naive, in, C);
  // Double rounding (2.2e-16) grows with the summation depth (T terms of K products); 1e-10
  // leaves four orders of magnitude of headroom at T = 1000 and still catches any wrong term.
  const auto rec = compare("recurrent vs naive", run(Form::recurrent, in, C), o_naive);
  const auto chk = compare("chunked vs naive", run(Form::chunked, in, C), o_naive);
  INFO(rec.report());
  INFO(chk.report());
  CHECK(rec.max_rel <= 1e-10);
  CHECK(chk.max_rel <= 1e-10);
}

TEST_CASE("forms: float forms agree with the double definition to 1e-5", "[forms][cross][float]") {
  const Index T = GENERATE(1, 2, 3, 5, 8, 17, 64, 100, 257, 1000);
  const Index C = GENERATE(2, 64);
  const Sizes s{2, T, 4, 2, 6, 5};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), C, seed);
  const auto in64 = random_inputs<double>(s, seed);
  const auto in32 = random_inputs<float>(s, seed);
  const auto o_ref = run(Form::naive, in64, C);
  // float32 has eps 6e-8; with T <= 1000 accumulated terms the normwise error stays ~1e-6.
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const auto c = compare(form_name(f) + " float vs naive double", run(f, in32, C), o_ref);
    INFO(c.report());
    CHECK(c.max_rel <= 1e-5);
  }
}

TEST_CASE("forms: results do not depend on the allocated level count L", "[forms][cross]") {
  // num_levels(37) = 7: the same inputs with 7 and with 15 allocated levels.
  auto in = random_inputs<double>({1, 37, 2, 2, 4, 3, 7}, 5);
  auto wide = random_inputs<double>({1, 37, 2, 2, 4, 3, 15}, 5);
  // Copy the used levels; the extra ones of `wide` hold random values that must never be read.
  for (Index t = 0; t < 37; ++t)
    for (Index h = 0; h < 2; ++h)
      for (Index l = 0; l < 7; ++l) wide.lam(0, t, h, l) = in.lam(0, t, h, l);
  wide.q = in.q; wide.k = in.k; wide.v = in.v; wide.g = in.g;
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const auto c = compare(form_name(f) + " L=15 vs L=7", run(f, wide, 8), run(f, in, 8));
    INFO(c.report());
    CHECK(c.max_rel == 0);
  }
}

TEST_CASE("forms: a long strongly decaying sequence stays finite", "[forms][numerics]") {
  // g ~ -5 per token over T = 16384: cumulative log-decay reaches ~ -1e5. Differences of
  // prefix sums would lose all precision and exp(-G_s) would overflow; every form must not.
  const Sizes s{1, 16384, 1, 1, 4, 4};
  const auto in = random_inputs<double>(s, 11, 5.0);
  const auto o_chunked = run(Form::chunked, in, 64);
  const auto o_rec = run(Form::recurrent, in, 64);
  for (double x : o_chunked.values()) REQUIRE(std::isfinite(x));
  const auto c = compare("chunked vs recurrent (T=16384, g~-5)", o_chunked, o_rec);
  INFO(c.report());
  CHECK(c.max_rel <= 1e-10);
}

TEST_CASE("forms: the naive mask neither overflows nor yields NaN over a long strong decay",
          "[naive][numerics]") {
  const Sizes s{1, 4096, 1, 1, 2, 2};
  const auto in = random_inputs<float>(s, 3, 5.0);
  const auto o = run(Form::naive, in, 64);
  for (float x : o.values()) REQUIRE(std::isfinite(x));
}

TEST_CASE("forms: one thread and many threads give bit-identical results", "[forms][threads]") {
  const Sizes s{3, 129, 4, 2, 5, 3};
  const auto in = random_inputs<double>(s, 21);
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const auto one = run(f, in, 16);
    omp_set_num_threads(std::max(2, saved));
    const auto many = run(f, in, 16);
    omp_set_num_threads(saved);
    CHECK(one.values() == many.values());
  }
}
