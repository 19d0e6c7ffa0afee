// The "cuda" training device through the whole training loop (train::run_training): a GPU run
// records its device and memory; two GPU runs of one seed agree to float rounding (the attention
// backward's atomics rule out bit equality, see apps/loglinear_train.cpp --help); a checkpoint
// written on the GPU resumes on the CPU and the other way round, each continuing the run it
// resumes (compared with the run that never switched); the Mamba-2 LM trains on the GPU as on the
// CPU; and what the GPU cannot run is refused.
#include <loglinear/cuda/train/device.hpp>
#include <loglinear/train/trainer.hpp>

#include "../../support/cuda_twin.hpp"
#include "../../support/temp_dir.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <nlohmann/json.hpp>

#include <cmath>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using json = nlohmann::json;

namespace {

// Small MQAR that still has two layers, two heads, several chunks and an MLP lambda.
TrainConfig small_run(const std::string& device) {
  TrainConfig c;
  c.device = device;
  c.data.task = "mqar";
  c.data.length = 48;
  c.data.pairs = 4;
  c.data.train_size = 256;
  c.data.val_size = 32;
  c.data.batch = 16;
  c.model.d_model = 32;
  c.model.layers = 2;
  c.model.heads = 2;
  c.model.mlp_hidden = 16;
  c.model.chunk = 16;
  c.model.lambda = "mlp_softplus";
  c.steps = 20;
  c.eval_every = 10;
  c.lr = 3e-3;
  c.progress = false;
  c.seed = 5;
  return c;
}

std::vector<double> train_losses(const json& result) {
  std::vector<double> out;
  for (const auto& row : result.at("history")) out.push_back(row.at("train_loss").get<double>());
  return out;
}

// Relative difference of two loss curves, worst over their rows.
double worst_rel(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return w;
}

}  // namespace

TEST_CASE("cuda device: a GPU run through run_training records the device and repeats to float rounding",
          "[cuda][gpu][train][device]") {
  REQUIRE_GPU();
  cuda::train::register_cuda_device();
  const json a = json::parse(run_training(small_run("cuda")));
  const json b = json::parse(run_training(small_run("cuda")));
  CHECK(a.at("config").at("device") == "cuda");
  CHECK_THAT(a.at("device_name").get<std::string>(), ContainsSubstring("sm_"));
  CHECK(a.at("peak_device_memory_bytes").get<double>() > 0);
  // Atomics in the operator's backward reorder float additions between runs: the losses of two runs
  // of one seed agree to ~1e-6 after 20 steps, not bit for bit.
  const double w = worst_rel(train_losses(a), train_losses(b));
  WARN("two GPU runs of one seed: worst relative train-loss difference " << w);
  CHECK(w <= 1e-4);
  // The CPU run of the same seed is the same optimisation: losses agree to float rounding.
  const json c = json::parse(run_training(small_run("cpu")));
  const double wc = worst_rel(train_losses(a), train_losses(c));
  WARN("GPU vs CPU run of one seed: worst relative train-loss difference " << wc);
  CHECK(wc <= 1e-3);
}

TEST_CASE("cuda device: checkpoints move between the GPU and the CPU and continue the run",
          "[cuda][gpu][train][device]") {
  REQUIRE_GPU();
  cuda::train::register_cuda_device();
  test::TempDir dir;
  for (const auto& [first, second] : {std::pair<std::string, std::string>{"cuda", "cpu"}, {"cpu", "cuda"}}) {
    CAPTURE(first, second);
    // Reference: 30 steps without switching, on the second device.
    TrainConfig whole = small_run(second);
    whole.steps = 30;
    const json ref = json::parse(run_training(whole));
    // 20 steps on the first device with a checkpoint, then resumed to 30 on the second.
    TrainConfig part = small_run(first);
    part.checkpoint = dir.file(first + ".bin");
    run_training(part);
    TrainConfig rest = small_run(second);
    rest.steps = 30;
    rest.resume = part.checkpoint;
    const json resumed = json::parse(run_training(rest));
    CHECK(resumed.at("resumed_at_step") == 20);
    CHECK(resumed.at("steps_run") == 30);
    const double w = worst_rel(train_losses(resumed), train_losses(ref));
    WARN(first << " -> " << second << ": worst relative train-loss difference to the unswitched run " << w);
    CHECK(w <= 1e-3);
  }
}

TEST_CASE("cuda device: a Mamba-2 LM run through run_training runs on the GPU and tracks the CPU run",
          "[cuda][gpu][train][device]") {
  REQUIRE_GPU();
  cuda::train::register_cuda_device();
  // A tiny LM: two blocks of two heads, one lambda MLP, chunks of 16 over T = 48.
  auto lm_run = [](const std::string& device) {
    TrainConfig c = small_run(device);
    c.model.model = "mamba2";
    c.model.d_model = 16;
    c.model.d_state = 8;
    c.model.ffn_hidden = 32;
    c.model.mlp_hidden = 8;
    c.steps = 10;
    c.eval_every = 5;
    return c;
  };
  const json a = json::parse(run_training(lm_run("cuda")));
  CHECK(a.at("config").at("device") == "cuda");
  CHECK(a.at("config").at("model") == "mamba2");
  CHECK(a.at("peak_device_memory_bytes").get<double>() > 0);
  // The same optimisation as the CPU run of the seed, to float rounding (as the task model above).
  const json c = json::parse(run_training(lm_run("cpu")));
  const double w = worst_rel(train_losses(a), train_losses(c));
  WARN("Mamba-2 LM, GPU vs CPU run of one seed: worst relative train-loss difference " << w);
  CHECK(w <= 1e-3);
}

TEST_CASE("cuda device: --matmul tf32 and --attention bf16 record themselves, track the float32 GPU run, and a "
          "checkpoint of theirs resumes in float32",
          "[cuda][gpu][train][device]") {
  REQUIRE_GPU();
  cuda::train::register_cuda_device();
  TrainConfig t = small_run("cuda");
  t.model.matmul = "tf32";
  const json a = json::parse(run_training(t));
  CHECK(a.at("config").at("matmul") == "tf32");
  const json f = json::parse(run_training(small_run("cuda")));
  CHECK(f.at("config").at("matmul") == "fp32");
  // TF32 GEMMs (~1e-3 relative each) perturb every step a little more than float rounding; over 20
  // steps of this small run the losses stay within 2 % of the float32 run (a wrong GEMM would not).
  const double w = worst_rel(train_losses(a), train_losses(f));
  WARN("MQAR, --matmul tf32 vs fp32 on the GPU, one seed: worst relative train-loss difference " << w);
  CHECK(w <= 2e-2);
  // The operator on bf16 copies of q, k, v as well (the task model's set_attention_precision):
  // each operator call is ~1e-2 off instead of ~1e-3, so the bound is 5 %.
  TrainConfig mixed = t;
  mixed.model.attention = "bf16";
  const json b = json::parse(run_training(mixed));
  CHECK(b.at("config").at("attention") == "bf16");
  CHECK(b.at("config").at("matmul") == "tf32");
  const double wb = worst_rel(train_losses(b), train_losses(f));
  WARN("MQAR, --matmul tf32 --attention bf16 vs fp32 on the GPU: worst relative train-loss difference " << wb);
  CHECK(wb <= 5e-2);
  // A TF32 checkpoint continues on the CPU (float32): --matmul may change on resume, as --device.
  test::TempDir dir;
  TrainConfig first = small_run("cuda");
  first.model.matmul = "tf32";
  first.model.attention = "bf16";
  first.steps = 10;
  first.checkpoint = dir.file("tf32.ckpt");
  run_training(first);
  TrainConfig cont = small_run("cpu");
  cont.resume = first.checkpoint;
  const json r = json::parse(run_training(cont));
  CHECK(r.at("config").at("matmul") == "fp32");
  CHECK(r.at("config").at("attention") == "fp32");
  CHECK(r.at("resumed_at_step") == 10);
  CHECK(worst_rel(train_losses(r), train_losses(f)) <= 5e-2);
}

TEST_CASE("cuda device: settings the GPU cannot run are refused before anything is built",
          "[cuda][gpu][train][device]") {
  cuda::train::register_cuda_device();
  TrainConfig c = small_run("cuda");
  c.model.form = "recurrent";
  CHECK_THROWS_WITH(validate(c), ContainsSubstring("--device cuda: expected --form chunked"));
  c = small_run("cuda");
  c.model.chunk = 128;
  CHECK_THROWS_WITH(validate(c), ContainsSubstring("--device cuda: expected --chunk <= 64"));
  c = small_run("cuda");
  c.model.mixer = "gdn";  // refused before the GPU is looked for: no CUDA Gated DeltaNet exists
  CHECK_THROWS_WITH(validate(c), ContainsSubstring("--device cuda: expected --mixer mamba2") &&
                                     ContainsSubstring("got --mixer gdn"));
  if (!cuda::device_available()) {
    // The CI case: a CUDA build on a machine without a GPU says so at once.
    CHECK_THROWS_WITH(validate(small_run("cuda")), ContainsSubstring("no CUDA device is available"));
  }
}
