// Example: context parallelism, one sequence split over the processes of mpirun.
//
// Shows: cp_segment dealing the sequence's chunks to the ranks, cp_forward / cp_backward running
// each rank's segment (one all-gather of Fenwick state summaries each, docs/context_parallel.md),
// and rank 0 checking the gathered outputs, gradients and the final state against one
// single-process chunked call on the same inputs.
// Run:    mpirun -n 4 --oversubscribe ./build/examples/context_parallel --length 1000 --chunk 64
//         (examples/context_parallel/README.md; --help lists the flags)
// Prints: each rank's tokens, the bytes each rank sends, the largest relative error of o, of every
//         gradient and of the final state (~1e-15), then PASS or FAIL; exits 1 on FAIL.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/context_parallel/context_parallel.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/mpi/communicator.hpp>

#include <CLI/CLI.hpp>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace loglinear;

namespace {

// The double-precision bound of issue 17: both sides compute the same sums in another order.
constexpr double kBound = 1e-10;

// MpiCommunicator sets MPI_ERRORS_RETURN on MPI_COMM_WORLD, so a failed MPI call returns a code.
void check_mpi(int code, const char* what) {
  if (code != MPI_SUCCESS) throw std::runtime_error(std::string(what) + ": MPI error " + std::to_string(code));
}

// Tokens [a, e) of a [B,T,...] tensor, copied into a [B,e-a,...] tensor.
template <int Rank>
Tensor<double, Rank> tokens(const Tensor<double, Rank>& x, Index a, Index e) {
  Shape<Rank> shape = x.shape();
  const Index T = shape[1], row = x.size() / (shape[0] * T);
  shape[1] = e - a;
  Tensor<double, Rank> out(shape);
  for (Index b = 0; b < shape[0]; ++b)
    std::copy_n(x.data() + (b * T + a) * row, (e - a) * row, out.data() + b * (e - a) * row);
  return out;
}

// Rank 0 receives every rank's [B,n_j,...] block and pastes it at that rank's tokens of a
// [B,T,...] tensor shaped like `whole`; the other ranks only send (and get an empty tensor back).
template <int Rank>
Tensor<double, Rank> gather_tokens(const Tensor<double, Rank>& mine, const Tensor<double, Rank>& whole,
                                   const std::vector<Segment>& segments, int rank) {
  const Shape<Rank>& full = whole.shape();
  const Index B = full[0], T = full[1], row = shape_size<Rank>(full) / (B * T);
  std::vector<int> counts, displs;
  for (const Segment& s : segments) {
    displs.push_back(counts.empty() ? 0 : displs.back() + counts.back());
    counts.push_back(static_cast<int>(B * (s.end - s.begin) * row));  // < 2^31: main caps the sizes
  }
  std::vector<double> all(rank == 0 ? static_cast<size_t>(B * T * row) : 0);
  check_mpi(MPI_Gatherv(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(), counts.data(),
                        displs.data(), MPI_DOUBLE, 0, MPI_COMM_WORLD),
            "MPI_Gatherv");
  if (rank != 0) return {};
  Tensor<double, Rank> out(full);
  for (size_t j = 0; j < segments.size(); ++j) {
    const Index n = segments[j].end - segments[j].begin;
    for (Index b = 0; b < B; ++b)
      std::copy_n(all.data() + displs[j] + b * n * row, n * row, out.data() + (b * T + segments[j].begin) * row);
  }
  return out;
}

// max |a - b| / max |b|: one number per tensor, relative to the reference's scale.
template <int Rank>
double max_rel(const Tensor<double, Rank>& a, const Tensor<double, Rank>& b) {
  double err = 0, scale = 1e-300;
  for (Index i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a.data()[i] - b.data()[i]));
    scale = std::max(scale, std::abs(b.data()[i]));
  }
  return err / scale;
}

// The sizes of one run (the flags).
struct Config {
  Index B = 2, T = 1000, H = 4, K = 16, V = 32, C = 64;
  unsigned seed = 1;
};

// The whole sequence's inputs and the loss's gradient dout, drawn from the seed: every rank draws
// the same numbers. A real job would load only its own tokens; drawing all of them here keeps
// the example short and gives rank 0 the reference's inputs.
struct Sequence {
  Tensor<double, 4> q, k, v, lam, dout;
  Tensor<double, 3> g;
  Sequence(const Config& c, Index L)
      : q({c.B, c.T, c.H, c.K}), k({c.B, c.T, c.H, c.K}), v({c.B, c.T, c.H, c.V}), lam({c.B, c.T, c.H, L}),
        dout({c.B, c.T, c.H, c.V}), g({c.B, c.T, c.H}) {
    std::mt19937 rng(c.seed);
    std::normal_distribution<double> n(0, 1);
    for (auto* t : {&q, &k}) for (auto& x : t->values()) x = n(rng) / 4;
    for (auto* t : {&v, &dout}) for (auto& x : t->values()) x = n(rng);
    for (auto& x : lam.values()) x = std::log1p(std::exp(n(rng)));  // positive level weights
    for (auto& x : g.values()) x = -0.1 * std::abs(n(rng));          // log-decay <= 0
  }
  Sequence(Tensor<double, 4> q_, Tensor<double, 4> k_, Tensor<double, 4> v_, Tensor<double, 4> lam_,
           Tensor<double, 4> dout_, Tensor<double, 3> g_)
      : q(std::move(q_)), k(std::move(k_)), v(std::move(v_)), lam(std::move(lam_)), dout(std::move(dout_)),
        g(std::move(g_)) {}
  // Tokens [a, e) of every tensor: one rank's segment.
  Sequence slice(Index a, Index e) const {
    return {tokens(q, a, e), tokens(k, a, e), tokens(v, a, e), tokens(lam, a, e), tokens(dout, a, e), tokens(g, a, e)};
  }
  AttentionInputs<double> inputs() const { return {q, k, v, g, lam}; }
};

// Splits the sequence, runs it over the ranks, and on rank 0 compares with one call. Returns
// whether every error is within the bound (the same answer on every rank).
bool run(const mpi::MpiCommunicator& comm, const Config& c) {
  const int R = comm.size(), r = comm.rank();
  const Index L = num_levels(c.T), C = effective_chunk_size(c.C, c.T);
  const Sequence all(c, L);

  // 1. The split: the ceil(T / C) chunks in contiguous runs, one run per rank (cp_segment).
  std::vector<Segment> segments;
  for (int j = 0; j < R; ++j) segments.push_back(cp_segment(c.T, C, R, j));
  const Segment seg = segments[static_cast<size_t>(r)];
  const Sequence mine = all.slice(seg.begin, seg.end);
  const Index n = seg.end - seg.begin;
  if (r == 0) {
    std::printf("context parallelism: B=%ld T=%ld H=%ld K=%ld V=%ld, %ld levels, chunk %ld, %d ranks, double\n",
                long(c.B), long(c.T), long(c.H), long(c.K), long(c.V), long(L), long(C), R);
    for (int j = 0; j < R; ++j)
      std::printf("  rank %d: tokens [%ld, %ld)%s\n", j, long(segments[j].begin), long(segments[j].end),
                  segments[j].begin == segments[j].end ? " (empty: fewer chunks than ranks)" : "");
    const Index state = c.B * c.H * L * c.K * c.V;
    std::printf("  each rank sends one all-gather block of %ld bytes forward (states + decays) and %ld backward "
                "(state gradients), each after a small header all-gather\n",
                long((state + c.B * c.H) * Index(sizeof(double))), long(state * Index(sizeof(double))));
  }

  // 2. Forward and backward of this rank's segment. Every rank calls both (collectives).
  Tensor<double, 4> o({c.B, n, c.H, c.V});
  const CpContext<double> ctx = cp_forward<double>(comm, mine.inputs(), c.T, {c.C}, o);
  AttentionGradTensors<double> grads({c.B, n, c.H, c.H, c.K, c.V, L});
  cp_backward<double>(comm, ctx, mine.inputs(), {c.C}, mine.dout, grads.views());

  // 3. Rank 0 gathers every rank's outputs and gradients and computes the single-process call.
  const auto gathered_o = gather_tokens(o, all.v, segments, r);
  const auto dq = gather_tokens(grads.dq, all.q, segments, r);
  const auto dk = gather_tokens(grads.dk, all.k, segments, r);
  const auto dv = gather_tokens(grads.dv, all.v, segments, r);
  const auto dg = gather_tokens(grads.dg, all.g, segments, r);
  const auto dlam = gather_tokens(grads.dlam, all.lam, segments, r);
  int ok = 1;
  if (r == 0) {
    Tensor<double, 4> o_ref(all.v.shape());
    FenwickState<double> final_ref;
    chunked_forward<double>(all.inputs(), {c.C}, o_ref, {nullptr, &final_ref});
    AttentionGradTensors<double> ref({c.B, c.T, c.H, c.H, c.K, c.V, L});
    chunked_backward<double>(all.inputs(), {c.C}, all.dout, ref.views());

    const double errors[] = {max_rel(gathered_o, o_ref), max_rel(dq, ref.dq),     max_rel(dk, ref.dk),
                             max_rel(dv, ref.dv),        max_rel(dg, ref.dg),     max_rel(dlam, ref.dlam),
                             max_rel(ctx.final_state.S, final_ref.S)};
    const char* names[] = {"o", "dq", "dk", "dv", "dg", "dlam", "final state"};
    std::printf("max relative error against one chunked_forward / chunked_backward call (bound %.0e):\n", kBound);
    double worst = 0;
    for (int i = 0; i < 7; ++i) {
      std::printf("  %-12s %.3g\n", names[i], errors[i]);
      worst = std::max(worst, errors[i]);
    }
    // The final state: one K x V block per level, non-empty where a bucket of t = T-1 is.
    std::string levels;
    for (const Bucket& bucket : buckets(c.T - 1))
      levels += " " + std::to_string(bucket.level) + ":[" + std::to_string(bucket.begin) + "," +
                std::to_string(bucket.end) + ")";
    std::printf("final state (on every rank): %ld tokens, S [B,H,L,K,V] = %s, levels:[tokens]%s\n",
                long(ctx.final_state.tokens), shape_string<5>(ctx.final_state.S.shape()).c_str(), levels.c_str());
    ok = worst <= kBound ? 1 : 0;  // NaN fails too
    std::printf("%s: max relative error %.3g over %d ranks\n", ok ? "PASS" : "FAIL", worst, R);
  }
  check_mpi(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return ok == 1;
}

// Adds the flags to `app`; the checks run while parsing, on every rank alike.
void add_flags(CLI::App& app, Config& c) {
  const auto power_of_two = CLI::Validator(
      [](std::string& s) {
        char* end = nullptr;
        const long long x = std::strtoll(s.c_str(), &end, 10);
        const bool ok = !s.empty() && *end == '\0' && x >= 1 && (x & (x - 1)) == 0;
        return ok ? std::string() : "expected a power of two >= 1, got " + s;
      },
      "POWER OF TWO");
  app.add_option("-B,--batch", c.B, "sequences in the batch")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("-T,--length", c.T, "tokens of the sequence that is split over the ranks")
      ->check(CLI::Range(1, 1 << 20))->capture_default_str();
  app.add_option("-H,--heads", c.H, "heads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("-K", c.K, "key size")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("-V", c.V, "value size")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("-C,--chunk", c.C, "chunk size: segments start at multiples of it")
      ->check(CLI::Range(1, 1 << 20) & power_of_two)->capture_default_str();
  app.add_option("--seed", c.seed, "seed of the random inputs")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int status = 0;
  {
    const mpi::MpiCommunicator comm;
    CLI::App app{"Context parallelism: one random sequence split over the MPI ranks, checked against one "
                 "single-process call. Run it with mpirun -n R."};
    Config c;
    add_flags(app, c);
    try {
      app.parse(argc, argv);
      // The largest tensor is allocated whole on every rank (the reference's inputs): keep it
      // under 2^27 doubles (1 GiB), which also keeps MPI's int counts in range.
      const Index largest = c.B * c.T * c.H * std::max({c.K, c.V, Index(num_levels(c.T))});
      if (largest > (Index{1} << 27)) {
        throw CLI::ValidationError("sizes", "B x T x H x max(K, V, L) = " + std::to_string(largest) +
                                                " elements, expected at most 2^27 (1 GiB of doubles per tensor)");
      }
      status = run(comm, c) ? 0 : 1;
    } catch (const CLI::ParseError& e) {
      // --help or a bad flag: every rank parsed the same argv, so every rank stops here.
      status = comm.rank() == 0 ? app.exit(e) : e.get_exit_code();
    } catch (const std::exception& e) {
      // A bad argument (cp_forward and cp_backward raise it on every rank alike) or an MPI failure.
      if (comm.rank() == 0) std::fprintf(stderr, "error: %s\n", e.what());
      status = 2;
    }
  }
  MPI_Finalize();
  return status;
}
