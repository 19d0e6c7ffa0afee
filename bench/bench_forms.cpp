// Times the three CPU forms of log-linear attention, forward and forward+backward, on one
// thread and on all threads, and prints the chunked/naive ratio next to the FLOP ratio that
// predicts it; with --model gdn or both, the same for log-linear Gated DeltaNet (SPEC §6), with
// each GDN form's time relative to the Mamba-2 form of the same T and threads (SPEC expects
// 2-3x). Output: a Markdown table on stdout (pasted into bench/RESULTS.md) and, optionally, CSV.
//
//   ./build/bench/bench_forms              # full sweep, T = 256 .. 16384 (a few minutes)
//   ./build/bench/bench_forms --quick      # T = 256 .. 1024
//   ./build/bench/bench_forms --model both --t-max 4096   # Mamba-2 and Gated DeltaNet rows
//   ./build/bench/bench_forms --help
#include <loglinear/attention/forms.hpp>
#include <loglinear/attention/gdn_forms.hpp>
#include <loglinear/attention/naive.hpp>
#include <loglinear/core/fenwick.hpp>

#include <CLI/CLI.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace loglinear;

namespace {

struct Problem {
  Index B, T, H, K, V;
  Tensor<float, 4> q, k, v, lam, dout;
  Tensor<float, 3> g, beta;
  Problem(Index B_, Index T_, Index H_, Index K_, Index V_)
      : B(B_), T(T_), H(H_), K(K_), V(V_), q({B, T, H, K}), k({B, T, H, K}), v({B, T, H, V}),
        lam({B, T, H, num_levels(T)}), dout({B, T, H, V}), g({B, T, H}), beta({B, T, H}) {
    std::mt19937 rng(1);
    std::normal_distribution<float> n(0, 1);
    for (auto* t : {&q, &k}) for (auto& x : t->values()) x = n(rng) / 8;
    for (auto* t : {&v, &lam, &dout}) for (auto& x : t->values()) x = n(rng);
    for (auto& x : g.values()) x = -0.05f * std::abs(n(rng));
    std::uniform_real_distribution<float> u(0, 1);
    for (auto& x : beta.values()) x = u(rng);
  }
  AttentionInputs<float> inputs() const { return {q, k, v, g, lam}; }
  GdnInputs<float> gdn_inputs() const { return {inputs(), beta}; }
};

// Median wall time of `fn` over repetitions filling at least `budget` seconds (min 1, max 7).
template <class Fn>
double time_it(Fn&& fn, double budget) {
  std::vector<double> times;
  double total = 0;
  while (times.size() < 7 && (times.empty() || total < budget)) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    times.push_back(s);
    total += s;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Multiply-adds x 2 of each form's forward (SPEC.md §3, §4, §5 costs), per head.
double flops(Form f, Index T, Index K, Index V, Index C) {
  const double t = double(T), k = double(K), v = double(V);
  const double levels = num_levels(T);
  switch (f) {
    case Form::naive: return 2 * t * t * (k + v);                  // Q K^T and M V, full T x T
    case Form::recurrent: return 2 * t * levels * k * v * 2;       // decay + read per level
    case Form::chunked: {
      const double c = double(std::min(C, T));
      const double E = std::max(0, num_levels(T) - int(std::log2(double(C))) - 1);
      // stage 1 dense blocks; stage 2 summaries; stages 3-4: one scan + half the rows read, per level
      return 2 * t * c * (k + v) + 2 * t * k * v + E * (t / c * k * v + t * k * v);
    }
  }
  return 0;
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times naive, recurrent and chunked log-linear attention (forward, forward+backward)"};
  bool quick = false, backward_too = true;
  std::string model = "mamba2";
  Index B = 1, H = 2, K = 64, V = 64, C = 64, naive_max = 4096, T_max = 16384;
  double budget = 0.5;
  std::string csv;
  app.add_flag("--quick", quick, "T = 256..1024 only");
  app.add_option("--model", model, "mamba2 (scalar decay), gdn (Gated DeltaNet, SPEC §6) or both")
      ->check(CLI::IsMember({"mamba2", "gdn", "both"}))->capture_default_str();
  app.add_option("--batch", B, "batch size B")->capture_default_str();
  app.add_option("--heads", H, "heads H (q/k per head, G = H)")->capture_default_str();
  app.add_option("-K", K, "key size")->capture_default_str();
  app.add_option("-V", V, "value size")->capture_default_str();
  app.add_option("--chunk", C, "chunk size of the chunked form")->capture_default_str();
  app.add_option("--naive-max", naive_max, "largest T for the O(T^2) naive form")->capture_default_str();
  app.add_option("--t-max", T_max, "largest T")->capture_default_str();
  app.add_option("--budget", budget, "seconds of repetitions per measurement")->capture_default_str();
  app.add_flag("!--no-backward", backward_too, "time the forward only");
  app.add_option("--csv", csv, "also write the rows to this CSV file");
  CLI11_PARSE(app, argc, argv);
  if (quick) T_max = std::min<Index>(T_max, 1024);

  const int all_threads = omp_get_max_threads();
  std::printf("# bench_forms: B=%ld H=%ld K=%ld V=%ld C=%ld, float32\n", long(B), long(H), long(K),
              long(V), long(C));
  std::printf("# CPU: %s, %d OpenMP threads available\n\n", cpu_name().c_str(), all_threads);
  std::printf("| T | threads | model | form | fwd ms | fwd+bwd ms | bwd/fwd | GFLOP/s fwd | chunked/naive fwd time | "
              "naive/chunked FLOP ratio | gdn/mamba2 fwd | gdn/mamba2 fwd+bwd |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> models;
  if (model != "gdn") models.push_back("mamba2");
  if (model != "mamba2") models.push_back("gdn");
  std::ofstream out;
  if (!csv.empty()) {
    out.open(csv);
    out << "T,threads,model,form,fwd_ms,fwdbwd_ms,gflops_fwd\n";
  }
  for (Index T = 256; T <= T_max; T *= 2) {
    Problem p(B, T, H, K, V);
    const auto in = p.inputs();
    for (int threads : {1, all_threads}) {
      omp_set_num_threads(threads);
      double mamba_fwd[3] = {0, 0, 0}, mamba_fb[3] = {0, 0, 0};  // by form, for the GDN ratio
      for (const std::string& m : models) {
        const bool gdn = m == "gdn";
        double naive_fwd = 0;
        for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
          if (f == Form::naive && T > naive_max) continue;
          Tensor<float, 4> o(p.v.shape());
          const auto run_fwd = [&] {
            if (gdn) gdn_forward<float>(f, p.gdn_inputs(), {C}, o);
            else forward<float>(f, in, {C}, o);
          };
          const double fwd = time_it(run_fwd, budget);
          double fb = 0;
          if (backward_too) {
            const AttentionDims dims{B, T, H, H, K, V, p.lam.dim(3)};
            if (gdn) {
              GdnGradTensors<float> gr(dims);
              fb = time_it([&] {
                run_fwd();
                gdn_backward<float>(f, p.gdn_inputs(), {C}, p.dout, gr.views());
              }, budget);
            } else {
              AttentionGradTensors<float> gr(dims);
              fb = time_it([&] {
                run_fwd();
                backward<float>(f, in, {C}, p.dout, gr.views());
              }, budget);
            }
          }
          if (f == Form::naive) naive_fwd = fwd;
          const int fi = int(f == Form::recurrent) + 2 * int(f == Form::chunked);
          if (!gdn) mamba_fwd[fi] = fwd, mamba_fb[fi] = fb;
          // The GFLOP/s column counts the Mamba-2 formula for both models: for GDN it shows the
          // rate at which it does the scalar-decay work, the delta rule's extra work on top.
          const double fl = flops(f, T, K, V, C) * double(B * H);
          char ratio[64] = "", flop_ratio[64] = "", vs_fwd[32] = "", vs_fb[32] = "";
          if (f == Form::chunked && naive_fwd > 0) {
            std::snprintf(ratio, sizeof ratio, "%.3f (naive %.1fx slower)", fwd / naive_fwd, naive_fwd / fwd);
            std::snprintf(flop_ratio, sizeof flop_ratio, "%.1f",
                          flops(Form::naive, T, K, V, C) / flops(Form::chunked, T, K, V, C));
          }
          if (gdn && mamba_fwd[fi] > 0) {
            std::snprintf(vs_fwd, sizeof vs_fwd, "%.2f", fwd / mamba_fwd[fi]);
            if (fb > 0) std::snprintf(vs_fb, sizeof vs_fb, "%.2f", fb / mamba_fb[fi]);
          }
          std::printf("| %ld | %d | %s | %s | %.2f | %.2f | %.2f | %.1f | %s | %s | %s | %s |\n", long(T), threads,
                      m.c_str(), form_name(f).c_str(), fwd * 1e3, fb * 1e3, fb > 0 ? (fb - fwd) / fwd : 0.0,
                      fl / fwd * 1e-9, ratio, flop_ratio, vs_fwd, vs_fb);
          std::fflush(stdout);
          if (out) out << T << ',' << threads << ',' << m << ',' << form_name(f) << ',' << fwd * 1e3 << ','
                       << fb * 1e3 << ',' << fl / fwd * 1e-9 << '\n';
        }
      }
    }
  }
  if (naive_max > 0) {
    // Where the naive form's time goes at its largest T, one head, one thread: the GEMMs run
    // at BLAS speed, the T x T elementwise passes (mask with one exp per entry, S ⊙ W) at
    // memory speed, which is why naive/chunked time exceeds the FLOP ratio.
    omp_set_num_threads(1);
    const Index T = std::min(naive_max, T_max);
    Problem p(1, T, 1, K, V);
    const auto in = p.inputs();
    const auto q = slice_bt(in.q, 0, 0), k = slice_bt(in.k, 0, 0), v = slice_bt(in.v, 0, 0);
    RowMatrix<float> S, W, M, O;
    const ConstTensorView<float, 3> g = p.g;
    const ConstTensorView<float, 4> lam = p.lam;
    const double t_mask = time_it([&] { W = decay_mask(slice_bt(g, 0, 0), slice_bt(lam, 0, 0)); }, budget);
    const double t_qk = time_it([&] { S.noalias() = q * k.transpose(); }, budget);
    const double t_had = time_it([&] { M = S.cwiseProduct(W); }, budget);
    const double t_mv = time_it([&] { O.noalias() = M * v; }, budget);
    std::printf("\n# naive forward breakdown, T=%ld, one head, one thread: decay_mask %.1f ms, "
                "Q K^T %.1f ms (%.1f GFLOP/s), S*W %.1f ms, M V %.1f ms (%.1f GFLOP/s)\n",
                long(T), t_mask * 1e3, t_qk * 1e3, 2.0 * T * T * K / t_qk * 1e-9, t_had * 1e3,
                t_mv * 1e3, 2.0 * T * T * V / t_mv * 1e-9);
  }
  return 0;
}
