// Dispatch by name over the Gated DeltaNet forms (attention/gdn_forms.hpp): each Form runs its own
// form (bit for bit the direct call), the chunk size reaches the chunked form only, and a Form
// value outside the enum is refused.
#include <loglinear/attention/gdn_forms.hpp>

#include "../support/compare.hpp"
#include "../support/gdn_cases.hpp"
#include "../support/random_inputs.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <string>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("gdn forms: gdn_forward and gdn_backward run the form they are given", "[gdn][forms]") {
  const Sizes s{2, 11, 4, 2, 3, 5};
  const auto seed = fresh_seed();
  CAPTURE(describe(s), seed);
  const auto c = random_gdn_case<double>(s, seed);
  const auto in = c.view();
  const ChunkedOptions opts{4};
  for (const std::string name : {"naive", "recurrent", "chunked"}) {
    CAPTURE(name);
    const Form form = parse_form(name);
    Tensor<double, 4> o(in.v.shape), o_direct(in.v.shape);
    gdn_forward<double>(form, in, opts, o);
    auto g = nan_gdn_grads<double>(gdn_dims_of(c)), g_direct = nan_gdn_grads<double>(gdn_dims_of(c));
    gdn_backward<double>(form, in, opts, c.base.dout, g.views());
    if (form == Form::naive) {
      gdn_naive_forward<double>(in, o_direct);
      gdn_naive_backward<double>(in, c.base.dout, g_direct.views());
    } else if (form == Form::recurrent) {
      gdn_recurrent_forward<double>(in, o_direct);
      gdn_recurrent_backward<double>(in, c.base.dout, g_direct.views());
    } else {
      gdn_chunked_forward<double>(in, opts, o_direct);
      gdn_chunked_backward<double>(in, opts, c.base.dout, g_direct.views());
    }
    CHECK(o.values() == o_direct.values());
    CHECK(g.dq.values() == g_direct.dq.values());
    CHECK(g.dk.values() == g_direct.dk.values());
    CHECK(g.dv.values() == g_direct.dv.values());
    CHECK(g.dg.values() == g_direct.dg.values());
    CHECK(g.dbeta.values() == g_direct.dbeta.values());
    CHECK(g.dlam.values() == g_direct.dlam.values());
  }
  // A chunk size only the chunked form reads: a bad one fails there and nowhere else.
  Tensor<double, 4> o(in.v.shape);
  CHECK_NOTHROW(gdn_forward<double>(Form::naive, in, ChunkedOptions{3}, o));
  CHECK_THROWS_WITH(gdn_forward<double>(Form::chunked, in, ChunkedOptions{3}, o),
                    ContainsSubstring("chunk_size: expected a power of two"));
}

TEST_CASE("gdn forms: an unknown form name or Form value is refused naming form", "[gdn][forms][errors]") {
  CHECK_THROWS_WITH(parse_form("delta"),
                    ContainsSubstring("form: expected one of naive, recurrent, chunked, got \"delta\""));
  const auto c = random_gdn_case<double>({1, 3, 1, 1, 2, 2}, 7);
  Tensor<double, 4> o(c.base.v.shape());
  auto g = nan_gdn_grads<double>(gdn_dims_of(c));
  const Form bad = static_cast<Form>(7);
  CHECK_THROWS_WITH(gdn_forward<double>(bad, c.view(), {}, o),
                    ContainsSubstring("form: expected one of naive, recurrent, chunked, got the value 7"));
  CHECK_THROWS_WITH(gdn_backward<double>(bad, c.view(), {}, c.base.dout, g.views()),
                    ContainsSubstring("form: expected one of naive, recurrent, chunked, got the value 7"));
}
