// loglinear-tour: the README's main job. Runs the three CPU forms (and the CUDA backend when it
// is built and a GPU is present) on one random input, prints how closely they agree and how long
// each takes, forward and backward. scripts/tour.sh then runs the quick adaptive-decay experiment.
//
//   ./build/apps/loglinear-tour            # B=2, T=2048, H=4, K=V=64
//   ./build/apps/loglinear-tour --help
#include <loglinear/attention/forms.hpp>
#include <loglinear/core/fenwick.hpp>

#include <loglinear/train/progress.hpp>

#ifdef LOGLINEAR_WITH_CUDA
#include <loglinear/cuda/chunked.hpp>
#endif

#include <CLI/CLI.hpp>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

using namespace loglinear;

namespace {
double max_rel(const Tensor<float, 4>& a, const Tensor<float, 4>& b) {
  double err = 0, scale = 1e-30;
  for (Index i = 0; i < a.size(); ++i) {
    err = std::max(err, double(std::abs(a.values()[i] - b.values()[i])));
    scale = std::max(scale, double(std::abs(b.values()[i])));
  }
  return err / scale;
}
template <class Fn>
double seconds(Fn&& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A tour of log-linear attention: the three forms on one input, agreement and timings"};
  Index B = 2, T = 2048, H = 4, K = 64, V = 64, C = 64;
  app.add_option("--batch", B, "batch")->capture_default_str();
  app.add_option("--length", T, "sequence length T")->capture_default_str();
  app.add_option("--heads", H, "heads")->capture_default_str();
  app.add_option("-K", K, "key size")->capture_default_str();
  app.add_option("-V", V, "value size")->capture_default_str();
  app.add_option("--chunk", C, "chunk size")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::printf("log-linear attention tour: B=%ld T=%ld H=%ld K=%ld V=%ld, %d levels, chunk %ld, "
              "float32, %d threads\n", long(B), long(T), long(H), long(K), long(V), num_levels(T),
              long(C), omp_get_max_threads());
  const Index L = num_levels(T);
  Tensor<float, 4> q({B, T, H, K}), k({B, T, H, K}), v({B, T, H, V}), lam({B, T, H, L}), dout({B, T, H, V});
  Tensor<float, 3> g({B, T, H});
  std::mt19937 rng(0);
  std::normal_distribution<float> n(0, 1);
  for (auto* t : {&q, &k}) for (auto& x : t->values()) x = n(rng) / std::sqrt(float(K));
  for (auto* t : {&v, &dout}) for (auto& x : t->values()) x = n(rng);
  for (auto& x : lam.values()) x = std::log1p(std::exp(n(rng)));  // softplus: positive weights
  for (auto& x : g.values()) x = -0.05f * std::abs(n(rng));
  const AttentionInputs<float> in{q, k, v, g, lam};

  struct Row { std::string name; double fwd, bwd; Tensor<float, 4> o; AttentionGradTensors<float> gr; };
  std::vector<Row> rows;
  train::Progress progress(3, true, 1);
  int done = 0;
  for (Form f : {Form::naive, Form::recurrent, Form::chunked}) {
    Row r{form_name(f), 0, 0, Tensor<float, 4>(v.shape()), AttentionGradTensors<float>({B, T, H, H, K, V, L})};
    r.fwd = seconds([&] { forward<float>(f, in, {C}, r.o); });
    r.bwd = seconds([&] { backward<float>(f, in, {C}, dout, r.gr.views()); });
    rows.push_back(std::move(r));
    progress.update(++done, "ran " + form_name(f));
  }
#ifdef LOGLINEAR_WITH_CUDA
  if (cuda::device_available()) {
    Row r{"cuda (" + cuda::device_name() + ")", 0, 0, Tensor<float, 4>(v.shape()),
          AttentionGradTensors<float>({B, T, H, H, K, V, L})};
    r.fwd = seconds([&] { cuda::chunked_forward<float>(in, {C}, r.o); });
    r.bwd = seconds([&] { cuda::chunked_backward<float>(in, {C}, dout, r.gr.views()); });
    rows.push_back(std::move(r));
  } else {
    std::printf("\n(CUDA backend built, but no GPU here: skipping it)\n");
  }
#endif
  progress.finish();
  const Row& ref = rows[0];
  std::printf("\n| form | forward s | backward s | max rel diff of o vs naive | of dq | of dg | of dlam |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf("| %s | %.3f | %.3f | %.2e | %.2e | %.2e | %.2e |\n", r.name.c_str(), r.fwd, r.bwd,
                max_rel(r.o, ref.o), max_rel(r.gr.dq, ref.gr.dq),
                [&] { double e = 0, s = 1e-30; for (Index i = 0; i < r.gr.dg.size(); ++i) { e = std::max(e, double(std::abs(r.gr.dg.values()[i] - ref.gr.dg.values()[i]))); s = std::max(s, double(std::abs(ref.gr.dg.values()[i]))); } return e / s; }(),
                max_rel(r.gr.dlam, ref.gr.dlam));
  }
  std::printf("\nchunked forward is %.1fx faster than naive at T = %ld (float32: differences ~1e-6 are "
              "rounding; the double-precision tests hold the forms to 1e-10).\n",
              rows[0].fwd / rows[2].fwd, long(T));
  return 0;
}
