// The training loop (trainer.hpp): validate, build, (resume,) train with periodic evaluation and
// checkpoints, then statistics of lambda and exp(g) and the JSON result.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/decay/decay.hpp>
#include <loglinear/lambda/lambda.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>
#include <loglinear/train/ablation.hpp>
#include <loglinear/train/device.hpp>
#include <loglinear/train/diagnostics.hpp>
#include <loglinear/train/evaluate.hpp>
#include <loglinear/train/progress.hpp>
#include <loglinear/train/resume.hpp>
#include <loglinear/train/schedule.hpp>
#include <loglinear/train/trainer.hpp>

#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace loglinear::train {
namespace {

// Set by request_stop(), from a signal handler: a lock-free atomic is async-signal-safe.
std::atomic<bool> stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Totals above these are refused before anything is allocated: 2^31 floats (8 GiB) of
// parameters or activations, 2^31 generated tokens. Far above any run this library is for, and
// low enough that a mistyped size is an error message rather than an out-of-memory kill.
constexpr double kMaxElements = 2147483648.0;

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}
void require(bool ok, const std::string& flag, const std::string& expected, const std::string& got) {
  if (!ok) throw std::invalid_argument(flag + ": expected " + expected + ", got " + got);
}
void require_key(const std::string& flag, const std::string& key, const std::vector<std::string>& known) {
  require(std::find(known.begin(), known.end(), key) != known.end(), flag, "one of " + join(known), "\"" + key + "\"");
}
void require_at_least(const std::string& flag, double value, double least) {
  require(std::isfinite(value) && value >= least, flag, ">= " + std::to_string(long(least)), std::to_string(value));
}
std::string fmt_count(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}
void require_total(const std::string& what, double total) {
  if (total > kMaxElements)
    throw std::invalid_argument(what + ": expected at most 2^31 elements (8 GiB of floats), got " +
                                fmt_count(total) +
                                "; lower the sizes");
}
Index levels_of(const TrainConfig& c) { return num_levels(std::max(c.data.length, c.data.eval_len)); }

json config_json(const TrainConfig& c) {
  const ModelConfig& m = c.model;
  const DataConfig& d = c.data;
  json j = {{"model", m.model}, {"mixer", m.mixer}, {"task", d.task}, {"lambda", m.lambda}, {"decay", m.decay}, {"decay_p", m.decay_p}, {"form", m.form}, {"matmul", m.matmul}, {"attention", m.attention},
            {"length", d.length}, {"pairs", d.pairs}, {"copy_tokens", d.copy_tokens}, {"eval_len", d.eval_len},
            {"d_model", m.d_model}, {"layers", m.layers}, {"heads", m.heads}, {"levels", levels_of(c)},
            {"mlp_hidden", m.mlp_hidden}, {"chunk", m.chunk}, {"batch", d.batch}, {"train_size", d.train_size},
            {"val_size", d.val_size}, {"steps", c.steps}, {"eval_every", c.eval_every}, {"lr", c.lr},
            {"warmup", c.warmup}, {"clip", c.clip}, {"weight_decay", c.weight_decay}, {"early_stop", c.early_stop},
            {"min_steps", c.min_steps}, {"seed", c.seed}, {"threads", omp_get_max_threads()}, {"device", c.device}};
  if (m.model == "mamba2") {
    j["d_state"] = m.d_state;
    j["expand"] = m.expand;
    j["ffn_hidden"] = m.ffn_hidden > 0 ? m.ffn_hidden : 4 * m.d_model;  // the width used (0: 4 d_model)
  }
  return j;
}

json stats_json(const ValueStats& s) {
  return {{"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max}, {"median", s.median}};
}

// Per layer and head, quantiles of exp(g) and of lambda per level, of the last forward.
Diagnostics diagnostics_of(const Model& model) {
  std::vector<RowMatrix<float>> gs, lams;
  for (Index i = 0; i < model.num_layers(); ++i) {
    gs.push_back(model.last_decay(i));
    lams.push_back(model.last_lambda(i));
  }
  return collect_diagnostics<float>(gs, lams, model.levels());
}

// Lambda per layer and level and exp(g) per layer, pooled over tokens and heads, of the last
// forward; per-head quantiles go to "diagnostics".
void add_statistics(const Model& model, json& result) {
  json lam = json::array(), dec = json::array();
  for (Index i = 0; i < model.num_layers(); ++i) {
    json levels = json::array();
    for (const ValueStats& s : level_stats(model.last_lambda(i), model.levels())) levels.push_back(stats_json(s));
    lam.push_back(levels);
    dec.push_back(stats_json(decay_stats(model.last_decay(i))));
  }
  result["lambda_stats"] = lam;
  result["decay_stats"] = dec;
  result["diagnostics"] = json::parse(diagnostics_of(model).to_json());
}

// lambda of every layer for the first validation sequence: tokens x (heads * levels).
void dump_lambda(Model& model, const tasks::Dataset& val, const json& config, const std::string& path) {
  model.forward(val.range(0, 1));
  json dump = {{"config", config}, {"tokens", json::array()}, {"lambda", json::array()}};
  for (Index p = 0; p < val.length(); ++p) dump["tokens"].push_back(val.data.tokens(0, p));
  for (Index layer = 0; layer < model.num_layers(); ++layer) {
    const RowMatrix<float>& lam = model.last_lambda(layer);
    json rows = json::array();
    for (Index t = 0; t < lam.rows(); ++t)
      rows.push_back(std::vector<float>(lam.row(t).data(), lam.row(t).data() + lam.cols()));
    dump["lambda"].push_back(rows);
  }
  std::ofstream f(path);
  if (!(f << dump.dump() << "\n")) throw std::runtime_error("--dump-lambda: cannot write " + path);
}

}  // namespace

void apply_quick_preset(TrainConfig& c) {
  // Small MQAR, enough steps to leave chance level on 2 cores in about a minute per mode.
  c.data.length = 64;
  c.data.pairs = 8;
  c.steps = 400;
  c.data.train_size = 2000;
  c.data.val_size = 256;
  c.eval_every = 100;
}

void validate(const TrainConfig& c) {
  const ModelConfig& m = c.model;
  const DataConfig& d = c.data;
  require_key("--model", m.model, {"task", "mamba2"});
  require_key("--mixer", m.mixer, {"mamba2", "gdn"});
  require_key("--task", d.task, {"mqar", "selective_copy", "lm"});
  require_key("--lambda", m.lambda, lambda::lambda_names());
  require_key("--decay", m.decay, decay::decay_names());
  require(m.decay_p > 0 && m.decay_p < 1, "--decay-p", "an initial decay rate in (0, 1)", std::to_string(m.decay_p));
  require(m.decay == "simple_decay" || m.decay_p == ModelConfig{}.decay_p, "--decay-p",
          "--decay simple_decay (the only decay with an initial rate)", "--decay " + m.decay);
  require_key("--form", m.form, {"naive", "recurrent", "chunked"});
  require_key("--matmul", m.matmul, {"fp32", "tf32"});
  require_key("--attention", m.attention, {"fp32", "bf16"});
  for (const auto& [flag, v] : std::vector<std::pair<std::string, double>>{
           {"--d-model", double(m.d_model)}, {"--layers", double(m.layers)}, {"--heads", double(m.heads)},
           {"--mlp-hidden", double(m.mlp_hidden)}, {"--chunk", double(m.chunk)}, {"--d-state", double(m.d_state)},
           {"--expand", double(m.expand)}, {"--length", double(d.length)}, {"--pairs", double(d.pairs)},
           {"--copy-tokens", double(d.copy_tokens)}, {"--batch", double(d.batch)},
           {"--train-size", double(d.train_size)}, {"--val-size", double(d.val_size)}, {"--steps", double(c.steps)},
           {"--eval-every", double(c.eval_every)}})
    require_at_least(flag, v, 1);
  require_at_least("--ffn-hidden", double(m.ffn_hidden), 0);
  require_at_least("--eval-len", double(d.eval_len), 0);
  require_at_least("--warmup", double(c.warmup), 0);
  require_at_least("--threads", double(c.threads), 0);
  require_at_least("--weight-decay", c.weight_decay, 0);
  require(std::isfinite(c.lr) && c.lr > 0, "--lr", "a number > 0", std::to_string(c.lr));
  require(std::isfinite(c.clip) && c.clip > 0, "--clip", "a number > 0", std::to_string(c.clip));
  require(c.early_stop >= 0 && c.early_stop <= 100, "--early-stop", "a percentage in [0, 100]",
          std::to_string(c.early_stop));
  require((m.chunk & (m.chunk - 1)) == 0, "--chunk", "a power of two", std::to_string(m.chunk));
  find_device(c.device).validate(m);  // --device itself, then what that device cannot run
  require(!c.ablate_lambda || (m.model == "task" && d.task != "lm"), "--ablate-lambda",
          "--model task with --task mqar or selective_copy (the tasks whose generator types every position)",
          "--model " + m.model + " --task " + d.task);
  if (m.model == "task") {
    require(m.d_model % m.heads == 0, "--d-model", "a multiple of --heads " + std::to_string(m.heads),
            std::to_string(m.d_model));
    require(m.decay != "tnl" || (m.heads >= 2 && m.layers >= 2), "--decay tnl",
            "--heads >= 2 and --layers >= 2 (its rates divide by H - 1 and L - 1; tnl_l, the learned variant, "
            "does not)", "--heads " + std::to_string(m.heads) + " --layers " + std::to_string(m.layers));
  } else {
    require(m.decay == "mamba2", "--decay",
            "mamba2 with --model mamba2 (the Mamba-2 layer's own decay, SPEC.md §8; other decays: --model task)",
            "\"" + m.decay + "\"");
    require((m.expand * m.d_model) % m.heads == 0, "--heads",
            "a divisor of --expand * --d-model = " + std::to_string(m.expand * m.d_model), std::to_string(m.heads));
  }
  // The task's own limits, with the flags named, before anything is generated.
  auto task_check = [&](const char* flags, auto&& fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(flags) + ": " + e.what());
    }
  };
  if (d.task == "mqar") {
    task_check("--pairs/--length", [&] { tasks::check_mqar({d.length, d.pairs, 128}, d.train_size); });
    task_check("--pairs/--val-size", [&] { tasks::check_mqar({d.length, d.pairs, 128}, d.val_size); });
    if (d.eval_len) task_check("--pairs/--eval-len", [&] { tasks::check_mqar({d.eval_len, d.pairs, 128}, d.val_size); });
  } else if (d.task == "selective_copy") {
    task_check("--copy-tokens/--length", [&] { tasks::check_selective_copy({d.length, d.copy_tokens}, d.train_size); });
    task_check("--copy-tokens/--val-size", [&] { tasks::check_selective_copy({d.length, d.copy_tokens}, d.val_size); });
    if (d.eval_len)
      task_check("--copy-tokens/--eval-len",
                 [&] { tasks::check_selective_copy({d.eval_len, d.copy_tokens}, d.val_size); });
  }
  // Totals, in double so that no product overflows before it is compared.
  const double dm = double(m.d_model), width = m.model == "mamba2" ? dm * double(m.expand + 2) : dm * 4;
  const double L = double(levels_of(c)), vocab = 256, T = double(std::max(d.length, d.eval_len));
  const double ffn = m.ffn_hidden > 0 ? double(m.ffn_hidden) : 4 * dm;
  require_total("parameters (--d-model, --layers, --heads, --mlp-hidden, --expand, --ffn-hidden)",
                2 * vocab * dm + double(m.layers) * (width * dm + double(m.heads) * L * (dm + double(m.mlp_hidden)) +
                                                     3 * ffn * dm));
  require_total("activations per step (--batch x --length x width)", double(d.batch) * T * width * double(m.layers));
  require_total("training tokens (--train-size x --length)", double(d.train_size) * double(d.length));
  require_total("validation tokens (--val-size x max(--length, --eval-len))", double(d.val_size) * T);
}

namespace {

// One run: the data, the model and its optimiser, and the totals of the segments so far. The
// loop is step() then, every eval_every steps, evaluate_at(); finish() writes the result.
class Run {
 public:
  explicit Run(const TrainConfig& c) : c_(c), data_(c.data), config_(config_json(c)) {
    // --chunk above the sequence needs no care here: every chunked call clamps it to the
    // sequence's power of two before sizing anything (effective_chunk_size, core/checks.hpp).
    const Device& device = find_device(c.device);
    model_ = device.make_model(c.model, data_.vocab(), levels_of(c), c.seed);
    opt_ = device.make_optimizer(*model_, c.weight_decay);
    if (!c.resume.empty()) {
      state_ = load_run(c.resume, *model_, *opt_, config_.dump());
      std::fprintf(stderr, "resumed from %s at step %ld\n", c.resume.c_str(), state_.step);
    }
    history_ = json::parse(state_.history_json);
    start_step_ = step_ = state_.step;
  }

  // Steps until --steps, the early stop or request_stop(), evaluating (and checkpointing) every
  // eval_every.
  void train() {
    Progress progress(c_.steps, c_.progress, c_.eval_every);
    for (; step_ < c_.steps && !stopped_early_ && !stop_requested.load(); ++step_) {
      const double lr = step();
      char msg[160];
      std::snprintf(msg, sizeof msg, "loss %.4f best acc %.1f%% %.0f tok/s", last_loss_, state_.best_accuracy,
                    tokens_per_s());
      progress.update(step_ + 1, msg);
      if ((step_ + 1) % c_.eval_every == 0 || step_ + 1 == c_.steps) evaluate_at(lr);
    }
    progress.finish();
  }

  // True when request_stop() ended train() early; then saves the checkpoint at the step reached.
  bool interrupted() {
    if (step_ >= c_.steps || stopped_early_ || !stop_requested.load()) return false;
    if (!c_.checkpoint.empty()) save_run(c_.checkpoint, *model_, *opt_, totals(step_), config_.dump());
    return true;
  }
  long steps_done() const { return step_; }

  // Final evaluation, statistics of lambda and exp(g) on (a batch of) the validation set, the
  // lambda dump, the one-line summary and the JSON result.
  std::string finish();

 private:
  // One optimisation step at step_: forward, backward, clip, AdamW. Returns the learning rate.
  double step() {
    const auto ts = Clock::now();
    const tasks::Batch batch = data_.train_batch(step_);
    model_->zero_grad();
    last_loss_ = model_->forward(batch);
    model_->backward();
    if (state_.first_train_loss < 0) state_.first_train_loss = last_loss_;
    opt_->clip_grad_norm(c_.clip);
    const double lr = warmup_cosine(step_, c_.warmup, c_.steps, c_.lr, c_.warmup > 0 ? 0.1 : 1.0);
    opt_->step(lr);
    tokens_ += batch.tokens.size();
    train_secs_ += std::chrono::duration<double>(Clock::now() - ts).count();
    return lr;
  }
  // The first evaluated step whose validation accuracy reached --early-stop, from the history so
  // that it survives a resume; null if none did (and for the LM, which has no early stop).
  json solved_at_step() const {
    if (c_.data.task == "lm") return nullptr;
    for (const json& row : history_)
      if (row.at("val_accuracy").get<double>() >= c_.early_stop) return row.at("step");
    return nullptr;
  }
  // "lambda_ablation": the final weights with lambda replaced by its means (ablation.hpp).
  void add_ablation(json& result) {
    if (c_.progress) std::fprintf(stderr, "lambda ablation on the CPU...\n");
    const LambdaAblation a = run_lambda_ablation(*model_, c_.model, c_.data, data_);
    result["lambda_ablation"] = json::parse(lambda_ablation_json(a));
    std::printf("lambda ablation: accuracy %.2f%% true, %.2f%% token mean, %.2f%% type mean (%.1f s)\n",
                a.val.truth.accuracy, a.val.token_mean.accuracy, a.val.type_mean.accuracy, a.seconds);
  }
  // Training tokens per second of this segment, evaluation excluded.
  double tokens_per_s() const { return double(tokens_) / std::max(train_secs_, 1e-9); }

  // A history row after step_ + 1 steps; decides the early stop; saves the checkpoint.
  void evaluate_at(double lr) {
    const Eval ev = evaluate(*model_, data_.val(), c_.data.batch);
    json row = {{"step", step_ + 1}, {"train_loss", last_loss_}, {"val_loss", ev.loss},
                {"val_accuracy", ev.accuracy}, {"tokens_per_s", tokens_per_s()}, {"lr", lr}};
    if (c_.data.task == "lm") {
      row["val_bits_per_byte"] = tasks::bits_per_byte(ev.loss);
      row["val_perplexity"] = std::exp(ev.loss);  // per byte
    }
    if (c_.data.eval_len) {
      const Eval lv = evaluate(*model_, data_.long_val(), c_.data.batch);
      long_acc_ = lv.accuracy;
      row["eval_len_accuracy"] = lv.accuracy;
      row["eval_len_loss"] = lv.loss;
    }
    history_.push_back(row);
    state_.best_accuracy = std::max(state_.best_accuracy, ev.accuracy);
    if (c_.data.task != "lm" && ev.accuracy >= c_.early_stop && step_ + 1 >= c_.min_steps) stopped_early_ = true;
    if (!c_.checkpoint.empty()) save_run(c_.checkpoint, *model_, *opt_, totals(step_ + 1), config_.dump());
  }

  // The run's state after `steps` steps, totals over every segment so far.
  RunState totals(long steps) const {
    RunState now = state_;
    now.step = steps;
    now.history_json = history_.dump();
    now.wall_time_s += std::chrono::duration<double>(Clock::now() - t0_).count();
    now.train_time_s += train_secs_;
    now.train_tokens += double(tokens_);
    return now;
  }

  const TrainConfig& c_;
  const TaskData data_;
  const json config_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> opt_;
  RunState state_;             // as of the start of this segment (resume) or empty
  json history_;
  long start_step_ = 0, step_ = 0;
  const Clock::time_point t0_ = Clock::now();
  double train_secs_ = 0;      // training steps only: evaluation and checkpoints are excluded
  double last_loss_ = 0, long_acc_ = -1;
  Index tokens_ = 0;
  bool stopped_early_ = false;
};

std::string Run::finish() {
  const Eval final_ev = evaluate(*model_, data_.val(), c_.data.batch);
  model_->forward(data_.val().range(0, std::min<Index>(data_.val().size(), c_.data.batch)));
  const RunState total = totals(step_);
  json result = {{"config", config_}, {"git_commit", c_.commit}, {"history", history_}};
  json build = json::object();
  for (const auto& [key, value] : c_.build) build[key] = value;
  const Device& device = find_device(c_.device);
  if (device.libraries) build["device_libraries"] = device.libraries();
  result["build"] = build;
  result["device_name"] = device.describe();
  result["peak_device_memory_bytes"] = device.peak_memory_bytes();  // this process's allocations (0 on the CPU)
  if (start_step_ > 0) result["resumed_at_step"] = start_step_;
  add_statistics(*model_, result);
  if (c_.ablate_lambda) add_ablation(result);
  if (c_.print_diagnostics) std::printf("\n%s", diagnostics_of(*model_).to_text().c_str());
  if (!c_.dump_lambda.empty()) dump_lambda(*model_, data_.val(), config_, c_.dump_lambda);
  result["first_train_loss"] = total.first_train_loss;  // of the whole run
  result["last_train_loss"] = last_loss_;
  result["best_accuracy"] = total.best_accuracy;
  result["final_accuracy"] = final_ev.accuracy;
  result["final_val_loss"] = final_ev.loss;
  if (c_.data.task == "lm") {
    result["final_val_bits_per_byte"] = tasks::bits_per_byte(final_ev.loss);
    result["final_val_perplexity"] = std::exp(final_ev.loss);  // per byte
  }
  result["eval_len_accuracy"] = c_.data.eval_len ? json(long_acc_) : json(nullptr);
  result["solved_at_step"] = solved_at_step();
  result["steps_run"] = step_;
  result["stopped_early"] = stopped_early_;
  result["wall_time_s"] = total.wall_time_s;    // training, evaluation and checkpoints, every segment
  result["train_time_s"] = total.train_time_s;  // training steps alone, every segment
  result["train_tokens_per_s"] = total.train_tokens / std::max(total.train_time_s, 1e-9);
  const std::string at_len =
      c_.data.eval_len ? ", at length " + std::to_string(c_.data.eval_len) + ": " + std::to_string(long_acc_) + "%" : "";
  std::printf("model %s mixer %s task %s lambda %s decay %s: best val accuracy %.2f%%, final %.2f%% (loss %.4f)%s, "
              "%ld steps, %.1f s\n",
              c_.model.model.c_str(), c_.model.mixer.c_str(), c_.data.task.c_str(), c_.model.lambda.c_str(),
              c_.model.decay.c_str(),
              total.best_accuracy, final_ev.accuracy, final_ev.loss, at_len.c_str(), step_, total.wall_time_s);
  return result.dump(2);
}

}  // namespace

void request_stop() noexcept { stop_requested.store(true); }

std::string run_training(TrainConfig c) {
  validate(c);
  c.data.seed = c.seed;
  if (c.threads > 0) omp_set_num_threads(c.threads);
  Run run(c);
  run.train();
  if (run.interrupted())
    throw Interrupted("stopped at step " + std::to_string(run.steps_done()) + " on request" +
                      (c.checkpoint.empty() ? " (no --checkpoint: nothing saved)"
                                            : "; continue with --resume " + c.checkpoint));
  const std::string text = run.finish();
  if (!c.json_path.empty()) {
    std::ofstream f(c.json_path);
    if (!(f << text << "\n")) throw std::runtime_error("--json: cannot write " + c.json_path);
  }
  return text;
}

}  // namespace loglinear::train
