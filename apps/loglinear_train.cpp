// loglinear-train: the command line of the experiments' training loop (train/trainer.hpp). It
// parses flags into a train::TrainConfig and calls train::run_training, which trains the
// adaptive-decay task model (SPEC.md §8, any decay of decay/, §14) or the full log-linear Mamba-2
// LM (--model mamba2) on MQAR, selective copying or byte-level language modelling and writes one
// JSON result.
//
//   ./build/apps/loglinear-train --help
//   ./build/apps/loglinear-train --quick                     # a couple of minutes on 2 cores
//   ./build/apps/loglinear-train --task mqar --lambda mlp_softplus --length 128 --pairs 32
//       --eval-len 256 --steps 2000 --json out.json --checkpoint out.ckpt   (one line)
//   ./build/apps/loglinear-train --quick --decay gla          # another decay parameterisation
//   ./build/apps/loglinear-train --quick --model mamba2       # the full log-linear Mamba-2 LM
//   ./build/apps/loglinear-train --quick --mixer gdn          # log-linear Gated DeltaNet instead
#include <loglinear/decay/decay.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/train/trainer.hpp>
#ifdef LOGLINEAR_WITH_CUDA
#include <loglinear/cuda/train/device.hpp>
#endif

#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <cerrno>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

using namespace loglinear;

namespace {

// The commit of the sources this binary was built from. A build from a `git archive` export has
// COMMIT at the source root filled in ("<hash> <tag>"): that is the answer, even when the export
// sits inside some other checkout. Otherwise git describe --dirty at the source root, so that a
// run from a checkout with uncommitted changes says so ("abc1234-dirty").
std::string git_commit() {
  const std::string archived = LOGLINEAR_ARCHIVE_COMMIT;
  if (!archived.empty()) return archived + " (git archive)";
  const std::string cmd = std::string("git -C \"") + LOGLINEAR_SOURCE_DIR + "\" describe --always --dirty 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[64];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

// How this binary was built and what it links, for the JSON's "build" record.
std::vector<std::pair<std::string, std::string>> build_record() {
  std::vector<std::pair<std::string, std::string>> b = {
      {"compiler", LOGLINEAR_BUILD_COMPILER},
      {"build_type", LOGLINEAR_BUILD_TYPE},
      {"cxx_flags", LOGLINEAR_BUILD_CXX_FLAGS},
      {"eigen", std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                    std::to_string(EIGEN_MINOR_VERSION)},
      {"openmp", std::to_string(_OPENMP)},
      {"nlohmann_json", std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_MINOR) +
                            "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH)},
  };
  const std::string cuda = LOGLINEAR_BUILD_CUDA;
  b.emplace_back("cuda", cuda.empty() ? "not built" : cuda);
  return b;
}

// SIGTERM / SIGINT: finish the current step, save the --checkpoint, exit with code 3 (a sweep's
// deadline stops its runs this way, and resumes them later from the checkpoint).
extern "C" void on_stop_signal(int) { train::request_stop(); }

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : " | ") + n;
  return out;
}

// Validators whose messages say what was expected ("--batch: expected an integer > 0, got 0").
// Integers are parsed with strtoll so that out-of-range text is refused, not wrapped.
CLI::Validator number_check(bool integer, bool strict) {
  const std::string what = std::string(integer ? "an integer " : "a number ") + (strict ? "> 0" : ">= 0");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double x = integer ? double(std::strtoll(text.c_str(), &end, 10)) : std::strtod(text.c_str(), &end);
        const bool ok = end != text.c_str() && *end == '\0' && errno == 0 && std::isfinite(x) && (strict ? x > 0 : x >= 0);
        return ok ? "" : "expected " + what + ", got " + text;
      },
      what);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train the log-linear attention task model or the full log-linear Mamba-2 LM "
               "(adaptive memory decay experiments)"};
  app.footer("Exit status: 0 done; 2 bad flags or an error (the message says which); 3 stopped by SIGTERM or "
             "SIGINT after the current step, with the --checkpoint saved there (continue with --resume).");
  const CLI::Validator pos = number_check(true, true), nonneg = number_check(true, false);
  const CLI::Validator pos_real = number_check(false, true), nonneg_real = number_check(false, false);
  train::TrainConfig c;
  c.data.corpus = LOGLINEAR_DEFAULT_CORPUS;
  train::ModelConfig& m = c.model;
  train::DataConfig& d = c.data;
  // --quick changes the defaults, so flags given next to it still win (--quick --pairs 4).
  bool quick = false;
  for (int i = 1; i < argc; ++i) quick |= std::string(argv[i]) == "--quick";
  if (quick) train::apply_quick_preset(c);
  app.add_option("--model", m.model, "task (SPEC.md §8 toy model: q/k/v/dt/dl projections, post-norm) | mamba2 "
                                     "(full log-linear Mamba-2 LM: conv, gate, SwiGLU blocks)")->capture_default_str();
  app.add_option("--mixer", m.mixer, "the operator of either model: mamba2 (log-linear Mamba-2) | gdn (log-linear "
                                     "Gated DeltaNet, SPEC.md §6: beta = sigmoid(b_proj x), L2-normalised q and k; "
                                     "--model mamba2 then has nn/gdn_mixer blocks; CPU only)")->capture_default_str();
  app.add_option("--task", d.task, "mqar | selective_copy | lm")->capture_default_str();
  app.add_option("--lambda", m.lambda, join(lambda::lambda_names()))->capture_default_str();
  app.add_option("--decay", m.decay, "decay parameterisation (SPEC.md §14): " + join(decay::decay_names()) +
                                         " (--model mamba2: mamba2 only; tnl needs --heads >= 2 and --layers >= 2)")
      ->capture_default_str();
  app.add_option("--decay-p", m.decay_p, "simple_decay: its initial decay rate p in (0, 1) (the decay study, "
                                         "SPEC.md §14.5)")->capture_default_str()->check(pos_real);
  app.add_option("--form", m.form, "operator form: naive | recurrent | chunked")->capture_default_str();
  app.add_option("--length", d.length, "training sequence length T")->capture_default_str()->check(pos);
  app.add_option("--pairs", d.pairs, "MQAR key-value pairs")->capture_default_str()->check(pos);
  app.add_option("--copy-tokens", d.copy_tokens, "selective copying: data tokens")->capture_default_str()->check(pos);
  app.add_option("--eval-len", d.eval_len, "also evaluate at this length (length generalisation)")->check(nonneg);
  app.add_option("--d-model", m.d_model, "model width (= K = V with one head)")->capture_default_str()->check(pos);
  app.add_option("--layers", m.layers, "log-linear layers")->capture_default_str()->check(pos);
  app.add_option("--heads", m.heads, "heads H (task: K = V = d_model / H; mamba2: V = expand * d_model / H)")
      ->capture_default_str()->check(pos);
  app.add_option("--d-state", m.d_state, "mamba2 model: K, the state size of q = C and k = B")
      ->capture_default_str()->check(pos);
  app.add_option("--expand", m.expand, "mamba2 model: d_inner = expand * d_model")->capture_default_str()->check(pos);
  app.add_option("--ffn-hidden", m.ffn_hidden, "mamba2 model: SwiGLU hidden width (0: 4 * d_model)")
      ->capture_default_str()->check(nonneg);
  app.add_option("--mlp-hidden", m.mlp_hidden, "hidden width of the lambda MLP")->capture_default_str()->check(pos);
  app.add_option("--chunk", m.chunk, "chunk size of the chunked form (a power of two; clamped to each "
                                     "call's sequence length)")->capture_default_str()->check(pos);
  app.add_option("--batch", d.batch, "sequences per step")->capture_default_str()->check(pos);
  app.add_option("--train-size", d.train_size, "training sequences generated up front")->capture_default_str()
      ->check(pos);
  app.add_option("--val-size", d.val_size, "validation sequences (LM: windows)")->capture_default_str()->check(pos);
  app.add_option("--steps", c.steps, "maximum training steps")->capture_default_str()->check(pos);
  app.add_option("--eval-every", c.eval_every, "steps between evaluations")->capture_default_str()->check(pos);
  app.add_option("--lr", c.lr, "peak learning rate (AdamW)")->capture_default_str()->check(pos_real);
  app.add_option("--warmup", c.warmup, "linear warm-up steps, then cosine decay (0: constant lr)")
      ->capture_default_str()->check(nonneg);
  app.add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay")->capture_default_str()
      ->check(nonneg_real);
  app.add_option("--clip", c.clip, "gradient-norm clip")->capture_default_str()->check(pos_real);
  app.add_option("--early-stop", c.early_stop, "stop at this validation accuracy (%)")->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--min-steps", c.min_steps,
                 "no early stop before this step (every run of a sweep then has an evaluation at a common "
                 "step; the JSON's solved_at_step still says when --early-stop was first reached)")
      ->capture_default_str()->check(nonneg);
  app.add_option("--seed", c.seed, "seed of data, init and batch order")->capture_default_str()->check(nonneg);
  app.add_option("--threads", c.threads, "OpenMP threads (0: all)")->capture_default_str()->check(nonneg);
  app.add_option("--device", c.device,
                 "where to train: cpu | cuda (the GPU twins of every layer, cuda/; needs a build with "
                 "-DLOGLINEAR_CUDA=ON and a GPU; both models, chunked form, --chunk <= 64). Checkpoints of "
                 "either device resume on either. Reproducibility: CPU runs of one seed are bit-identical; on the GPU "
                 "every layer sums in a fixed order except the attention operator's backward, which adds some "
                 "gradient terms (dq, dk over levels, the chunk summaries' gradient) with floating-point atomics "
                 "whose order varies, so GPU runs of one seed agree to float rounding, not bit for bit "
                 "(docs/reading-the-code.md, \"GPU training\")")
      ->capture_default_str();
  app.add_option("--matmul", m.matmul,
                 "GEMM arithmetic: fp32 (float32, the reference; every device) | tf32 (--device cuda only: the "
                 "linear layers' GEMMs round their inputs to TF32 on the tensor cores, about 1e-3 relative error "
                 "per GEMM, for speed; the attention operator follows --attention). Recorded in the JSON; a checkpoint "
                 "resumes under either")
      ->capture_default_str();
  app.add_option("--attention", m.attention,
                 "storage of the attention operator's q, k, v: fp32 (the reference; every device) | bf16 "
                 "(--device cuda only: rounded to bfloat16 copies around the tensor-core kernels, float32 "
                 "accumulation, <= 1e-2 normwise error in the operator, for speed). Recorded in the JSON; a "
                 "checkpoint resumes under either")
      ->capture_default_str();
  app.add_option("--json", c.json_path, "write the result as JSON here");
  app.add_option("--checkpoint", c.checkpoint, "save model + optimiser here at every evaluation");
  app.add_option("--resume", c.resume, "resume from a --checkpoint file");
  app.add_option("--dump-lambda", c.dump_lambda,
                 "write lambda (tokens x levels, per layer) of one validation sequence as JSON");
  app.add_flag("--print-diagnostics", c.print_diagnostics,
               "print, per layer and head, quantiles of exp(g) and lambda per level of the statistics forward (the "
               "first --batch validation sequences, final weights; always in the JSON under \"diagnostics\")");
  app.add_flag("--ablate-lambda", c.ablate_lambda,
               "after training, evaluate the final weights (on the CPU, whatever --device) with lambda replaced in "
               "every layer by its per-level mean over all validation positions and by its mean per position type "
               "(mqar: key/value/query/filler; selective_copy: data/noise/query); writes \"lambda_ablation\" "
               "(accuracy and loss of true, token_mean, type_mean, also at --eval-len) into the JSON. --model task "
               "with --task mqar or selective_copy only; costs three evaluations of each set");
  app.add_option("--corpus", d.corpus, "LM corpus (made by the build target kjv_corpus)")->capture_default_str();
  app.add_flag("--quick", quick, "small MQAR preset: the defaults become T = 64, 8 pairs, 400 steps, 2000 / 256 "
                                 "sequences (flags given with it still apply)");
  app.add_flag("!--no-progress", c.progress, "no progress bar");
  bool check_only = false;
  app.add_flag("--check-config", check_only,
               "check every flag against every other (the checks a run makes before it generates data or builds "
               "a model), print \"config ok\" and exit 0, or name the bad flag and exit 2; trains nothing "
               "(scripts/sweep.py runs it on every cell of a grid before starting any run)");
  CLI11_PARSE(app, argc, argv);
  try {
#ifdef LOGLINEAR_WITH_CUDA
    loglinear::cuda::train::register_cuda_device();
#endif
    if (check_only) {
      train::validate(c);
      std::printf("config ok\n");
      return 0;
    }
    c.commit = git_commit();
    c.build = build_record();
    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    train::run_training(c);
    return 0;
  } catch (const train::Interrupted& e) {
    std::fprintf(stderr, "loglinear-train: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loglinear-train: error: %s\n", e.what());
    return 2;
  }
}
