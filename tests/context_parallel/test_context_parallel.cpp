// Context parallelism's pieces without MPI (reference/loglinear/context_parallel/): the segment
// split; the Fenwick transition (a state carried across a segment plus the segment's own
// contribution equals the state after the longer prefix, eq. 3-4) and its transpose (the adjoint
// identity <T x, y> = <x, T^T y>, eq. 7); cp_forward / cp_backward over SelfCommunicator equal
// the single-process chunked call; argument errors. The R >= 2 runs are tests/mpi/ (mpirun).
// Tolerances: double 1e-12 and float 1e-5 relative where the same arithmetic is reordered (the
// transition's sums), as the rest of the suite.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/context_parallel/context_parallel.hpp>
#include <loglinear/core/fenwick.hpp>

#include "../support/context_parallel_check.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <random>

using namespace loglinear;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("context_parallel: segments are chunk-aligned, contiguous, balanced and cover the call for any rank count",
          "[context_parallel]") {
  for (Index T : {1, 5, 64, 65, 100, 1000, 4097})
    for (Index C : {1, 4, 64})
      for (int R : {1, 2, 3, 4, 7, 64}) {
        CAPTURE(T, C, R);
        Index expect = 0, most = 0, least = T + 1;
        for (int r = 0; r < R; ++r) {
          const Segment s = cp_segment(T, C, R, r);
          CHECK(s.begin == expect);
          CHECK(s.end >= s.begin);
          if (s.begin < T) CHECK(s.begin % C == 0);
          if (s.end < T) CHECK(s.end % C == 0);
          const Index chunks = (s.end - s.begin + C - 1) / C;
          most = std::max(most, chunks);
          least = std::min(least, chunks);
          expect = s.end;
        }
        CHECK(expect == T);
        CHECK(most - least <= 1);
      }
  CHECK_THROWS_WITH(cp_segment(0, 4, 2, 0), ContainsSubstring("T: expected"));
  CHECK_THROWS_WITH(cp_segment(8, 3, 2, 0), ContainsSubstring("power of two"));
  CHECK_THROWS_WITH(cp_segment(8, 4, 0, 0), ContainsSubstring("R: expected"));
  CHECK_THROWS_WITH(cp_segment(8, 4, 2, 2), ContainsSubstring("r: expected a rank in [0, 2)"));
}

TEST_CASE("context_parallel: the transition of a state plus a segment's contribution is the longer prefix's state",
          "[context_parallel]") {
  const auto [n, n_out] = GENERATE(table<Index, Index>({{0, 5}, {1, 2}, {2, 4}, {3, 3}, {5, 13}, {8, 9}, {7, 64},
                                                        {64, 100}, {37, 38}, {100, 257}}));
  const std::uint64_t seed = fresh_seed();
  CAPTURE(n, n_out, seed);
  Sizes s{2, n_out, 3, 1, 4, 5};
  s.L = num_levels(n_out) + 1;
  const auto in = random_inputs<double>(s, seed);
  const ChunkedOptions opts{8};
  // The state after the whole prefix [0, n_out), in one call.
  FenwickState<double> whole;
  Tensor<double, 4> o(in.v.shape());
  chunked_forward<double>(in.view(), opts, o, {nullptr, &whole});
  // The state after [0, n), carried across [n, n_out), plus [n, n_out) from zero at n.
  FenwickState<double> first{0, Tensor<double, 5>({2, 3, 0, 4, 5})};
  if (n > 0) {
    const auto a = slice_inputs(in, 0, n);
    Tensor<double, 4> oa(a.v.shape());
    chunked_forward<double>(a.view(), opts, oa, {nullptr, &first});
  }
  const Index L_out = num_levels(n_out);
  FenwickState<double> carried{n_out, Tensor<double, 5>({2, 3, L_out, 4, 5})};
  Tensor<double, 2> log_decay({2, 3});
  for (Index b = 0; b < 2; ++b)
    for (Index t = n; t < n_out; ++t)
      for (Index h = 0; h < 3; ++h) log_decay(b, h) += in.g(b, t, h);
  fenwick_transition<double>(first, log_decay, carried);
  if (n < n_out) {
    const auto rest = slice_inputs(in, n, n_out);
    const FenwickState<double> zero{n, Tensor<double, 5>({2, 3, n ? num_levels(n) : 0, 4, 5})};
    FenwickState<double> contribution;
    Tensor<double, 4> ob(rest.v.shape());
    chunked_forward<double>(rest.view(), opts, ob, {&zero, &contribution});
    for (Index i = 0; i < carried.S.size(); ++i) carried.S.data()[i] += contribution.S.data()[i];
  }
  const Comparison c = compare("carried state", carried.S, whole.S);
  INFO(c.report());
  CHECK(c.max_rel <= 1e-12);
}

TEST_CASE("context_parallel: the transposed transition is the transition's adjoint", "[context_parallel]") {
  const auto [n, n_out] = GENERATE(table<Index, Index>({{1, 1}, {1, 9}, {6, 7}, {6, 100}, {33, 64}, {64, 65}}));
  const std::uint64_t seed = fresh_seed();
  CAPTURE(n, n_out, seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  const Index B = 2, H = 2, K = 3, V = 2;
  FenwickState<double> x{n, Tensor<double, 5>({B, H, num_levels(n), K, V})};
  Tensor<double, 5> y({B, H, num_levels(n_out), K, V});
  Tensor<double, 2> log_decay({B, H});
  // Only non-empty buckets carry values in a state (empty buckets' levels are zero).
  for (const Bucket& bucket : buckets(n - 1))
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H; ++h)
        for (Index i = 0; i < K * V; ++i) x.S(b, h, bucket.level, i / V, i % V) = normal(rng);
  for (auto& v : y.values()) v = normal(rng);
  for (auto& v : log_decay.values()) v = -std::abs(normal(rng));
  FenwickState<double> Tx{n_out, Tensor<double, 5>(y.shape())};
  fenwick_transition<double>(x, log_decay, Tx);
  Tensor<double, 5> Tty(x.S.shape());
  fenwick_transition_transpose<double>(y, n, n_out, log_decay, Tty);
  double lhs = 0, rhs = 0;
  for (Index i = 0; i < y.size(); ++i) lhs += Tx.S.data()[i] * y.data()[i];
  for (Index i = 0; i < x.S.size(); ++i) rhs += x.S.data()[i] * Tty.data()[i];
  CHECK(std::abs(lhs - rhs) <= 1e-12 * std::max(1.0, std::abs(lhs)));
}

TEST_CASE("context_parallel: one rank (SelfCommunicator) equals the chunked call, outputs, gradients and states",
          "[context_parallel]") {
  const auto [T, chunk, prefix, G, H] = GENERATE(table<Index, Index, Index, Index, Index>(
      {{1, 64, 0, 1, 1}, {37, 8, 0, 1, 2}, {100, 16, 13, 2, 4}, {64, 64, 64, 1, 2}, {129, 4, 1, 3, 3}}));
  const std::uint64_t seed = fresh_seed();
  const CpCase c{{2, T, H, G, 5, 3}, chunk, prefix, seed};
  CAPTURE(describe(c));
  const SelfCommunicator self;
  for (const Comparison& r : check_context_parallel<double>(self, c)) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-12);
  }
  for (const Comparison& r : check_context_parallel<float>(self, c)) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-5);
  }
}

TEST_CASE("context_parallel: bad arguments are named, on every rank", "[context_parallel][errors]") {
  const SelfCommunicator self;
  const auto in = random_inputs<double>(Sizes{1, 10, 2, 1, 3, 2}, 3);
  Tensor<double, 4> o(in.v.shape());
  CHECK_THROWS_WITH(cp_forward<double>(self, in.view(), 11, {4}, o),
                    ContainsSubstring("cp_forward: rank 0: q: expected this rank's segment"));
  CHECK_THROWS_WITH(cp_forward<double>(self, in.view(), 10, {3}, o), ContainsSubstring("power of two"));
  Tensor<double, 4> wrong({1, 9, 2, 2});
  CHECK_THROWS_WITH(cp_forward<double>(self, in.view(), 10, {4}, wrong), ContainsSubstring("o: expected shape"));
  const auto ctx = cp_forward<double>(self, in.view(), 10, {4}, o);
  GradTensors<double> g(in);
  CHECK_THROWS_WITH(cp_backward<double>(self, ctx, in.view(), {4}, wrong, g.view()),
                    ContainsSubstring("cp_backward: rank 0: dout: expected shape"));
  Tensor<double, 5> bad_final({1, 2, 1, 3, 2});
  CHECK_THROWS_WITH(cp_backward<double>(self, ctx, in.view(), {4}, in.dout, g.view(), &bad_final),
                    ContainsSubstring("d_final: expected shape"));
}
