// loglinear-train: trains the adaptive-decay task model (SPEC.md §8, any decay of decay/, §14) or
// the full log-linear Mamba-2 LM (nn/lm.hpp, --model mamba2) on MQAR, selective copying or
// byte-level language modelling, evaluates every --eval-every steps (also at --eval-len for
// length generalisation), stops early at --early-stop accuracy, and writes one JSON result
// (config, history, best accuracy, wall time, git commit, lambda and decay statistics).
//
//   ./build/apps/loglinear-train --help
//   ./build/apps/loglinear-train --quick                     # a couple of minutes on 2 cores
//   ./build/apps/loglinear-train --task mqar --lambda mlp_softplus --length 128 --pairs 32
//       --eval-len 256 --steps 2000 --json out.json --checkpoint out.ckpt   (one line)
//   ./build/apps/loglinear-train --quick --decay gla          # another decay parameterisation
//   ./build/apps/loglinear-train --quick --model mamba2       # the full log-linear Mamba-2 LM
#include <loglinear/core/fenwick.hpp>
#include <loglinear/decay/decay.hpp>
#include <loglinear/models/checkpoint.hpp>
#include <loglinear/models/optim.hpp>
#include <loglinear/models/task_model.hpp>
#include <loglinear/train/diagnostics.hpp>
#include <loglinear/nn/lm.hpp>
#include <loglinear/tasks/char_lm.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>

#include "progress.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

using namespace loglinear;
using json = nlohmann::json;

namespace {

struct Options {
  std::string model = "task", task = "mqar", lambda = "mlp_softplus", decay = "mamba2", form = "chunked";
  Index length = 128, pairs = 8, copy_tokens = 16, eval_len = 0;
  Index d_model = 64, layers = 2, heads = 1, mlp_hidden = 64, chunk = 64;
  Index d_state = 16, expand = 2, ffn_hidden = 0;  // --model mamba2 only
  Index batch = 64, train_size = 10000, val_size = 1000;
  long steps = 20000, eval_every = 100, warmup = 0;
  double lr = 1e-3, clip = 1.0, early_stop = 99.0, weight_decay = 0.0;
  std::uint64_t seed = 0;
  int threads = 0;
  std::string json_path, checkpoint, resume, dump_lambda, corpus = LOGLINEAR_DEFAULT_CORPUS;
  bool print_diagnostics = false;
  bool quick = false, progress = true;
};

// Training and evaluation data of one run; batches are a deterministic function of (seed, step)
// so that a resumed run sees exactly the batches the uninterrupted one would have.
class TaskData {
 public:
  explicit TaskData(const Options& o) : o_(o) {
    make(o);
  }
  Index vocab() const { return vocab_; }

 private:
  // The generators name their own field ("length: ..."); the long split's length is --eval-len.
  template <class Fn>
  static auto at_eval_len(Fn&& fn) {
    try {
      return fn();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--eval-len: ") + e.what());
    }
  }
  void make(const Options& o) {
    if (o.task == "mqar") {
      vocab_ = 128;
      train_ = tasks::make_mqar({o.length, o.pairs, 128}, o.train_size, o.seed);
      val_ = tasks::make_mqar({o.length, o.pairs, 128}, o.val_size, o.seed + 1);
      if (o.eval_len) long_ = at_eval_len([&] { return tasks::make_mqar({o.eval_len, o.pairs, 128}, o.val_size, o.seed + 2); });
    } else if (o.task == "selective_copy") {
      vocab_ = tasks::SelectiveCopyVocab::size;
      train_ = tasks::make_selective_copy({o.length, o.copy_tokens}, o.train_size, o.seed);
      val_ = tasks::make_selective_copy({o.length, o.copy_tokens}, o.val_size, o.seed + 1);
      if (o.eval_len) long_ = at_eval_len([&] { return tasks::make_selective_copy({o.eval_len, o.copy_tokens}, o.val_size, o.seed + 2); });
    } else if (o.task == "lm") {
      vocab_ = tasks::CharCorpus::vocab;
      corpus_ = std::make_unique<tasks::CharCorpus>(tasks::CharCorpus::from_file(o.corpus));
      val_.data = corpus_->valid_windows(o.length, o.val_size);
      if (o.eval_len) long_.data = at_eval_len([&] { return corpus_->valid_windows(o.eval_len, o.val_size); });
    } else {
      throw std::invalid_argument("--task: expected one of mqar, selective_copy, lm, got \"" + o.task + "\"");
    }
  }

 public:
  tasks::Batch train_batch(long step) const {
    const std::uint64_t s = o_.seed * 1000003ULL + std::uint64_t(step);
    if (corpus_) return corpus_->sample_train(o_.batch, o_.length, s);
    std::mt19937_64 rng(s);
    std::uniform_int_distribution<Index> pick(0, train_.size() - 1);
    std::vector<Index> idx(static_cast<size_t>(o_.batch));
    for (auto& i : idx) i = pick(rng);
    return train_.gather(idx);
  }
  const tasks::Dataset& val() const { return val_; }
  const tasks::Dataset& long_val() const { return long_; }

 private:
  Options o_;
  Index vocab_ = 0;
  tasks::Dataset train_, val_, long_;
  std::unique_ptr<tasks::CharCorpus> corpus_;
};

std::string join(const std::vector<std::string>& names, const char* sep) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : sep) + n;
  return out;
}


// What the training loop needs from a model, so that the task model and the full log-linear
// Mamba-2 LM train through the same loop, evaluation, statistics and checkpoints.
class Model {
 public:
  virtual ~Model() = default;
  // Mean cross-entropy over the scored targets; with `backward`, adds into every grad.
  virtual double step(const tasks::Batch& batch, bool backward, Index* correct = nullptr) = 0;
  virtual std::vector<models::Param<float>*> params() = 0;
  // The checkpoint's architecture entry: a file of another model or decay is rejected.
  virtual std::string architecture() const = 0;
  virtual Index num_layers() const = 0;
  // Of the last forward: lambda per layer and level, exp(g) per layer (over tokens and heads),
  // and lambda [T, H*L] of one sequence.
  virtual std::vector<std::vector<models::ValueStats>> lambda_stats() const = 0;
  virtual std::vector<models::ValueStats> decay_stats() const = 0;
  virtual RowMatrix<float> lambda_of(Index layer, Index sequence) const = 0;
  // Of the last forward: per layer and head, quantiles of exp(g) and of lambda per level.
  virtual train::Diagnostics diagnostics() const = 0;
  void zero_grad() {
    for (auto* p : params()) p->grad.setZero();
  }
};

class TaskModelRun final : public Model {
 public:
  TaskModelRun(const models::TaskModelConfig& cfg, std::uint64_t seed) : m_(cfg, seed) {}
  double step(const tasks::Batch& b, bool backward, Index* correct) override { return m_.step(b, backward, correct); }
  std::vector<models::Param<float>*> params() override { return m_.params(); }
  std::string architecture() const override { return m_.architecture(); }
  Index num_layers() const override { return m_.config().layers; }
  std::vector<std::vector<models::ValueStats>> lambda_stats() const override { return m_.lambda_stats(); }
  std::vector<models::ValueStats> decay_stats() const override { return m_.decay_stats(); }
  RowMatrix<float> lambda_of(Index layer, Index seq) const override { return m_.lambda_of(layer, seq); }
  train::Diagnostics diagnostics() const override {
    std::vector<RowMatrix<float>> g, lam;
    for (Index i = 0; i < m_.config().layers; ++i) {
      g.push_back(m_.last_decay(i));
      lam.push_back(m_.last_lambda(i));
    }
    return train::collect_diagnostics<float>(g, lam, m_.config().levels);
  }

 private:
  models::TaskModel<float> m_;
};

// The LM of nn/lm.hpp on the task batches: the same next-token targets, -1 = not scored.
class MambaLmRun final : public Model {
 public:
  MambaLmRun(const nn::LmConfig& cfg, std::uint64_t seed, std::string lambda)
      : m_(cfg, seed), lambda_(std::move(lambda)), H_(cfg.mixer.heads), L_(cfg.mixer.levels) {}
  double step(const tasks::Batch& b, bool backward, Index* correct) override {
    B_ = b.tokens.dim(0);
    T_ = b.tokens.dim(1);
    const std::vector<std::int32_t>& tokens = b.tokens.values();
    const std::vector<std::int32_t>& targets = b.targets.values();
    // Training: MambaLm::loss (forward + backward). Evaluation: the same mean cross-entropy
    // from the logits, which also gives the accuracy (the training loop never asks for it).
    if (backward) return m_.loss(tokens, targets, B_, true);
    const RowMatrix<float> logits = m_.forward(tokens, B_);
    return models::cross_entropy<float>(logits, targets.data(), nullptr, correct);
  }
  std::vector<models::Param<float>*> params() override { return m_.params(); }
  std::string architecture() const override { return "mamba2_lm lambda=" + lambda_; }
  Index num_layers() const override { return m_.num_layers(); }
  std::vector<std::vector<models::ValueStats>> lambda_stats() const override {
    std::vector<std::vector<models::ValueStats>> out;
    for (Index i = 0; i < m_.num_layers(); ++i) {
      const RowMatrix<float>& lam = m_.mixer(i).last_lambda();  // [N, H*L], column h*L + l
      std::vector<models::ValueStats> per_level;
      for (Index l = 0; l < L_; ++l) {
        std::vector<double> xs;
        for (Index n = 0; n < lam.rows(); ++n)
          for (Index h = 0; h < H_; ++h) xs.push_back(double(lam(n, h * L_ + l)));
        per_level.push_back(models::value_stats(std::move(xs)));
      }
      out.push_back(per_level);
    }
    return out;
  }
  std::vector<models::ValueStats> decay_stats() const override {
    std::vector<models::ValueStats> out;
    for (Index i = 0; i < m_.num_layers(); ++i) {
      const RowMatrix<float>& g = m_.mixer(i).last_decay();
      std::vector<double> xs;
      for (Index k = 0; k < g.size(); ++k) xs.push_back(std::exp(double(g.data()[k])));
      out.push_back(models::value_stats(std::move(xs)));
    }
    return out;
  }
  RowMatrix<float> lambda_of(Index layer, Index seq) const override {
    if (seq < 0 || seq >= B_) throw std::invalid_argument("lambda_of: expected sequence < " + std::to_string(B_));
    return m_.mixer(layer).last_lambda().middleRows(seq * T_, T_);
  }
  train::Diagnostics diagnostics() const override {
    std::vector<RowMatrix<float>> g, lam;
    for (Index i = 0; i < m_.num_layers(); ++i) {
      g.push_back(m_.mixer(i).last_decay());
      lam.push_back(m_.mixer(i).last_lambda());
    }
    return train::collect_diagnostics<float>(g, lam, L_);
  }

 private:
  nn::MambaLm<float> m_;
  std::string lambda_;
  Index H_, L_, B_ = 0, T_ = 0;
};

struct Eval {
  double loss = 0, accuracy = 0;
};

// Mean loss and token accuracy (%) over every scored position of a dataset, in batches.
Eval evaluate(Model& model, const tasks::Dataset& ds, Index batch) {
  double loss_sum = 0;
  Index correct_sum = 0, scored_sum = 0;
  for (Index b = 0; b < ds.size(); b += batch) {
    const tasks::Batch part = ds.range(b, std::min(ds.size(), b + batch));
    Index correct = 0;
    const Index scored = part.scored();
    loss_sum += model.step(part, false, &correct) * double(scored);
    correct_sum += correct;
    scored_sum += scored;
  }
  return {loss_sum / double(std::max<Index>(1, scored_sum)),
          100.0 * double(correct_sum) / double(std::max<Index>(1, scored_sum))};
}

std::string git_commit() {
  // describe --dirty: a run from a checkout with uncommitted changes says so ("abc1234-dirty").
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

json stats_json(const models::ValueStats& s) {
  return {{"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max}, {"median", s.median}};
}

json config_json(const Options& o, Index levels) {
  json c = {{"model", o.model}, {"task", o.task}, {"lambda", o.lambda}, {"decay", o.decay}, {"form", o.form},
          {"length", o.length}, {"pairs", o.pairs}, {"copy_tokens", o.copy_tokens},
          {"eval_len", o.eval_len}, {"d_model", o.d_model}, {"layers", o.layers},
          {"heads", o.heads}, {"levels", levels}, {"mlp_hidden", o.mlp_hidden}, {"chunk", o.chunk},
          {"batch", o.batch}, {"train_size", o.train_size}, {"val_size", o.val_size},
          {"steps", o.steps}, {"eval_every", o.eval_every}, {"lr", o.lr}, {"warmup", o.warmup},
          {"clip", o.clip}, {"weight_decay", o.weight_decay}, {"early_stop", o.early_stop},
          {"seed", o.seed}, {"threads", omp_get_max_threads()}};
  if (o.model == "mamba2") {
    c["d_state"] = o.d_state;
    c["expand"] = o.expand;
    c["ffn_hidden"] = o.ffn_hidden;
  }
  return c;
}

// Parameters plus Adam moments, so that --resume continues the exact optimisation.
std::vector<models::Param<float>> optimiser_state(Model& model, models::Adam<float>& opt) {
  std::vector<models::Param<float>> out;
  auto params = model.params();
  for (size_t i = 0; i < params.size(); ++i) {
    out.emplace_back("adam.m." + params[i]->name, opt.first_moments()[i], false);
    out.emplace_back("adam.v." + params[i]->name, opt.second_moments()[i], false);
  }
  return out;
}

// A resumed run must continue the same run: every setting that changes the data, the model or the
// optimisation must match the checkpoint's (only --steps, --threads, --eval-len and --early-stop
// may change; --steps only without warm-up, since the cosine schedule spans all steps).
void check_resume_config(const json& state, const json& now, const std::string& path) {
  if (!state.contains("config")) return;  // checkpoints written before the config was recorded
  const json& then = state.at("config");
  auto differs = [&](const std::string& key) { return then.contains(key) && (!now.contains(key) || now.at(key) != then.at(key)); };
  auto refuse = [&](const std::string& key, const std::string& why) {
    throw std::invalid_argument("--resume: " + path + " was written with " + key + " = " + then.at(key).dump() +
                                ", this run has " + key + " = " + (now.contains(key) ? now.at(key).dump() : "(none)") +
                                "; " + why);
  };
  // The model and the task first: they explain every other difference.
  for (const char* key : {"model", "task"})
    if (differs(key)) refuse(key, "resume with the same --model and --task");
  if (differs("levels")) {
    refuse("levels", "levels = num_levels(max(--length, --eval-len)) sizes the lambda parameters, so --eval-len "
                     "may change on resume only if it keeps that number");
  }
  if (differs("steps") && then.value("warmup", 0) != 0) {
    refuse("steps", "with --warmup the cosine schedule spans all --steps, so they may not change on resume");
  }
  for (const auto& [key, value] : then.items()) {
    if (key == "threads" || key == "eval_len" || key == "early_stop" || key == "steps") continue;
    if (differs(key)) {
      refuse(key, "resume with the same settings (only --steps, --threads, --eval-len and --early-stop may change)");
    }
  }
}

void save_all(const std::string& path, Model& model, models::Adam<float>& opt, const json& state) {
  auto extra = optimiser_state(model, opt);
  auto list = model.params();
  for (auto& p : extra) list.push_back(&p);
  models::save_checkpoint(path, list, model.architecture());
  std::ofstream(path + ".json") << state.dump(2) << "\n";
}

int run(Options o) {
  if (o.quick) {
    // Small MQAR, enough steps to leave chance level on 2 cores in about a minute per mode.
    o.length = 64; o.pairs = 8; o.steps = std::min<long>(o.steps, 400); o.train_size = 2000;
    o.val_size = 256; o.eval_every = 100;
  }
  const auto decays = decay::decay_names();
  if (std::find(decays.begin(), decays.end(), o.decay) == decays.end()) {
    throw std::invalid_argument("--decay: expected one of " + join(decays, ", ") + ", got \"" + o.decay + "\"");
  }
  if (o.model != "task" && o.model != "mamba2") {
    throw std::invalid_argument("--model: expected one of task, mamba2, got \"" + o.model + "\"");
  }
  if (o.model == "mamba2" && o.decay != "mamba2") {
    throw std::invalid_argument("--decay: --model mamba2 has the Mamba-2 layer's own decay (SPEC.md §8), "
                                "expected mamba2, got \"" + o.decay + "\" (other decays: --model task)");
  }
  if (o.model == "task" && o.decay == "tnl" && (o.heads < 2 || o.layers < 2)) {
    throw std::invalid_argument("--decay tnl: its rates divide by H - 1 and L - 1, so it needs --heads >= 2 and "
                                "--layers >= 2 (tnl_l, the learned variant, does not), got --heads " +
                                std::to_string(o.heads) + " --layers " + std::to_string(o.layers));
  }
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const Index levels = num_levels(std::max(o.length, o.eval_len));
  const TaskData data(o);
  const models::LambdaMode lambda = models::parse_lambda_mode(o.lambda);
  std::unique_ptr<Model> model_ptr;
  if (o.model == "task") {
    models::TaskModelConfig cfg{data.vocab(), o.d_model, o.layers, o.heads, levels, o.mlp_hidden,
                                o.chunk, lambda, parse_form(o.form), o.decay};
    model_ptr = std::make_unique<TaskModelRun>(cfg, o.seed);
  } else {
    // SPEC.md §8's block: d_inner = expand * d_model = H * V, one group of K = d_state, SwiGLU
    // of hidden width ffn_hidden (0: 4 * d_model, fla's hidden_ratio).
    if (o.ffn_hidden == 0) o.ffn_hidden = 4 * o.d_model;
    nn::LmConfig cfg;
    cfg.vocab = data.vocab();
    cfg.d_model = o.d_model;
    cfg.layers = o.layers;
    cfg.mlp_hidden = o.ffn_hidden;
    cfg.mixer.expand = o.expand;
    cfg.mixer.heads = o.heads;
    cfg.mixer.n_groups = 1;
    cfg.mixer.d_state = o.d_state;
    cfg.mixer.levels = levels;
    cfg.mixer.lambda = lambda;
    cfg.mixer.lambda_hidden = o.mlp_hidden;
    cfg.mixer.form = parse_form(o.form);
    cfg.mixer.chunk = o.chunk;
    model_ptr = std::make_unique<MambaLmRun>(cfg, o.seed, o.lambda);
  }
  Model& model = *model_ptr;
  models::Adam<float> opt(model.params(), 0.9, 0.999, 1e-8, o.weight_decay);

  json result = {{"config", config_json(o, levels)}, {"git_commit", git_commit()}, {"history", json::array()}};
  long start_step = 0;
  double best = 0;
  // Wall time and tokens of the segments before a --resume: totals cover the whole run.
  double prior_wall = 0;
  double prior_tokens = 0;
  double prior_first_loss = -1;  // the first segment's first training loss
  if (!o.resume.empty()) {
    std::ifstream f(o.resume + ".json");
    if (!f) throw std::runtime_error("--resume: cannot read " + o.resume + ".json");
    const json state = json::parse(f);
    check_resume_config(state, result["config"], o.resume);
    auto extra = optimiser_state(model, opt);
    auto list = model.params();
    for (auto& p : extra) list.push_back(&p);
    models::load_checkpoint(o.resume, list, model.architecture());
    for (size_t i = 0; i < model.params().size(); ++i) {
      opt.first_moments()[i] = extra[2 * i].value;
      opt.second_moments()[i] = extra[2 * i + 1].value;
    }
    start_step = state.at("step").get<long>();
    opt.set_steps(start_step);
    result["history"] = state.at("history");
    best = state.at("best_accuracy").get<double>();
    prior_wall = state.value("wall_time_s", 0.0);
    prior_tokens = state.value("train_tokens", 0.0);
    prior_first_loss = state.value("first_train_loss", -1.0);
    result["resumed_at_step"] = start_step;
    std::fprintf(stderr, "resumed from %s at step %ld\n", o.resume.c_str(), start_step);
  }

  const auto t0 = std::chrono::steady_clock::now();
  apps::Progress progress(o.steps, o.progress, o.eval_every);
  double last_loss = 0, long_acc = -1, first_loss = -1;
  long step = start_step;
  Index tokens = 0;
  bool stopped_early = false;
  for (; step < o.steps && !stopped_early; ++step) {
    const tasks::Batch batch = data.train_batch(step);
    model.zero_grad();
    last_loss = model.step(batch, true);
    if (first_loss < 0) first_loss = last_loss;
    models::clip_grad_norm(model.params(), o.clip);
    const double lr = models::warmup_cosine(step, o.warmup, o.steps, o.lr, o.warmup > 0 ? 0.1 : 1.0);
    opt.step(lr);
    tokens += batch.tokens.size();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char msg[160];
    std::snprintf(msg, sizeof msg, "loss %.4f best acc %.1f%% %.0f tok/s", last_loss, best, double(tokens) / secs);
    progress.update(step + 1, msg);
    if ((step + 1) % o.eval_every == 0 || step + 1 == o.steps) {
      const Eval ev = evaluate(model, data.val(), o.batch);
      json row = {{"step", step + 1}, {"train_loss", last_loss}, {"val_loss", ev.loss},
                  {"val_accuracy", ev.accuracy}, {"tokens_per_s", double(tokens) / secs}, {"lr", lr}};
      if (o.task == "lm") {
        row["val_bits_per_byte"] = tasks::bits_per_byte(ev.loss);
        row["val_perplexity"] = std::exp(ev.loss);  // per byte
      }
      if (o.eval_len) {
        const Eval lv = evaluate(model, data.long_val(), o.batch);
        long_acc = lv.accuracy;
        row["eval_len_accuracy"] = lv.accuracy;
        row["eval_len_loss"] = lv.loss;
      }
      result["history"].push_back(row);
      best = std::max(best, ev.accuracy);
      if (o.task != "lm" && ev.accuracy >= o.early_stop) stopped_early = true;
      if (!o.checkpoint.empty()) {
        save_all(o.checkpoint, model, opt,
                 {{"step", step + 1}, {"history", result["history"]}, {"best_accuracy", best},
                  {"wall_time_s", prior_wall + secs}, {"train_tokens", prior_tokens + double(tokens)},
                  {"config", result["config"]},
                  {"first_train_loss", prior_first_loss >= 0 ? prior_first_loss : first_loss}});
      }
    }
  }
  progress.finish();
  // Statistics of lambda and exp(g) on (a batch of) the validation set with the final weights.
  const Eval final_ev = evaluate(model, data.val(), o.batch);
  model.step(data.val().range(0, std::min<Index>(data.val().size(), o.batch)), false);
  json lam = json::array(), dec = json::array();
  for (const auto& layer : model.lambda_stats()) {
    json levels_json = json::array();
    for (const auto& s : layer) levels_json.push_back(stats_json(s));
    lam.push_back(levels_json);
  }
  for (const auto& s : model.decay_stats()) dec.push_back(stats_json(s));
  if (!o.dump_lambda.empty()) {
    // lambda of every layer for the first validation sequence: tokens x (heads * levels).
    json dump = {{"config", config_json(o, levels)}, {"tokens", json::array()}, {"lambda", json::array()}};
    for (Index p = 0; p < data.val().length(); ++p) dump["tokens"].push_back(data.val().data.tokens(0, p));
    for (Index layer = 0; layer < model.num_layers(); ++layer) {
      const RowMatrix<float> lam = model.lambda_of(layer, 0);
      json rows = json::array();
      for (Index t = 0; t < lam.rows(); ++t) rows.push_back(std::vector<float>(lam.row(t).data(), lam.row(t).data() + lam.cols()));
      dump["lambda"].push_back(rows);
    }
    std::ofstream f(o.dump_lambda);
    if (!f) throw std::runtime_error("--dump-lambda: cannot write " + o.dump_lambda);
    f << dump.dump() << "\n";
  }
  const double wall = prior_wall + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  result["first_train_loss"] = prior_first_loss >= 0 ? prior_first_loss : first_loss;  // of the whole run
  result["last_train_loss"] = last_loss;
  result["best_accuracy"] = best;
  result["final_accuracy"] = final_ev.accuracy;
  result["final_val_loss"] = final_ev.loss;
  if (o.task == "lm") {
    result["final_val_bits_per_byte"] = tasks::bits_per_byte(final_ev.loss);
    result["final_val_perplexity"] = std::exp(final_ev.loss);  // per byte
  }
  result["eval_len_accuracy"] = o.eval_len ? json(long_acc) : json(nullptr);
  result["steps_run"] = step;
  result["stopped_early"] = stopped_early;
  result["wall_time_s"] = wall;
  result["train_tokens_per_s"] = (prior_tokens + double(tokens)) / wall;  // over every segment
  result["lambda_stats"] = lam;
  // Per layer and head (the pooled stats above mix the heads): quantiles of exp(g) and lambda.
  const train::Diagnostics diag = model.diagnostics();
  result["diagnostics"] = json::parse(diag.to_json());
  if (o.print_diagnostics) std::printf("\n%s", diag.to_text().c_str());
  result["decay_stats"] = dec;
  std::printf("model %s task %s lambda %s decay %s: best val accuracy %.2f%%, final %.2f%% (loss %.4f)%s, "
              "%ld steps, %.1f s\n",
              o.model.c_str(), o.task.c_str(), o.lambda.c_str(), o.decay.c_str(), best, final_ev.accuracy,
              final_ev.loss,
              o.eval_len ? (", at length " + std::to_string(o.eval_len) + ": " + std::to_string(long_acc) + "%").c_str() : "",
              step, wall);
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    if (!f) throw std::runtime_error("--json: cannot write " + o.json_path);
    f << result.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train the log-linear attention task model or the full log-linear Mamba-2 LM "
               "(adaptive memory decay experiments)"};
  // Validators whose messages say what was expected ("--batch: expected a number > 0, got 0").
  auto number_check = [](bool strict) {
    return CLI::Validator(
        [strict](std::string& text) -> std::string {
          char* end = nullptr;
          const double x = std::strtod(text.c_str(), &end);
          if (end == text.c_str() || *end != '\0' || !std::isfinite(x) || (strict ? !(x > 0) : !(x >= 0)))
            return std::string("expected a number ") + (strict ? "> 0" : ">= 0") + ", got " + text;
          return "";
        },
        strict ? "> 0" : ">= 0");
  };
  const CLI::Validator positive_real = number_check(true), non_negative_real = number_check(false);
  auto integer_check = [](bool strict) {
    return CLI::Validator(
        [strict](std::string& text) -> std::string {
          char* end = nullptr;
          errno = 0;
          const long long x = std::strtoll(text.c_str(), &end, 10);
          if (end == text.c_str() || *end != '\0' || errno != 0 || (strict ? x <= 0 : x < 0))
            return std::string("expected an integer ") + (strict ? "> 0" : ">= 0") + ", got " + text;
          return "";
        },
        strict ? "integer > 0" : "integer >= 0");
  };
  const CLI::Validator positive = integer_check(true), non_negative = integer_check(false);

  Options o;
  app.add_option("--model", o.model,
                 "task (SPEC.md §8 toy model: q/k/v/dt/dl projections, post-norm) | mamba2 (full "
                 "log-linear Mamba-2 LM: conv, gate, SwiGLU blocks)")
      ->capture_default_str();
  app.add_option("--task", o.task, "mqar | selective_copy | lm")->capture_default_str();
  app.add_option("--lambda", o.lambda, "fixed | constant | mlp_softplus | mlp_softmax")->capture_default_str();
  app.add_option("--decay", o.decay,
                 "decay parameterisation (SPEC.md §14): " + join(decay::decay_names(), " | ") +
                     " (--model mamba2: mamba2 only; tnl needs --heads >= 2 and --layers >= 2)")
      ->capture_default_str();
  app.add_option("--form", o.form, "operator form: naive | recurrent | chunked")->capture_default_str();
  app.add_option("--length", o.length, "training sequence length T")->capture_default_str()->check(positive);
  app.add_option("--pairs", o.pairs, "MQAR key-value pairs")->capture_default_str()->check(positive);
  app.add_option("--copy-tokens", o.copy_tokens, "selective copying: data tokens")->capture_default_str();
  app.add_option("--eval-len", o.eval_len, "also evaluate at this length (length generalisation)");
  app.add_option("--d-model", o.d_model, "model width (= K = V with one head)")->capture_default_str();
  app.add_option("--layers", o.layers, "log-linear layers")->capture_default_str();
  app.add_option("--heads", o.heads, "heads H (task: K = V = d_model / H; mamba2: V = expand * d_model / H)")
      ->capture_default_str();
  app.add_option("--d-state", o.d_state, "mamba2 model: K, the state size of q = C and k = B")->capture_default_str();
  app.add_option("--expand", o.expand, "mamba2 model: d_inner = expand * d_model")->capture_default_str();
  app.add_option("--ffn-hidden", o.ffn_hidden, "mamba2 model: SwiGLU hidden width (0: 4 * d_model)")
      ->capture_default_str();
  app.add_option("--mlp-hidden", o.mlp_hidden, "hidden width of the lambda MLP")->capture_default_str();
  app.add_option("--chunk", o.chunk, "chunk size of the chunked form")->capture_default_str();
  app.add_option("--batch", o.batch, "sequences per step")->capture_default_str()->check(positive);
  app.add_option("--train-size", o.train_size, "training sequences generated up front")->capture_default_str()
      ->check(positive);
  app.add_option("--val-size", o.val_size, "validation sequences (LM: windows)")->capture_default_str()
      ->check(positive);
  app.add_option("--steps", o.steps, "maximum training steps")->capture_default_str()->check(positive);
  app.add_option("--eval-every", o.eval_every, "steps between evaluations")->capture_default_str()->check(positive);
  app.add_option("--lr", o.lr, "peak learning rate (Adam)")->capture_default_str()->check(positive_real);
  app.add_option("--warmup", o.warmup, "linear warm-up steps, then cosine decay (0: constant lr)")->capture_default_str()
      ->check(non_negative);
  app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")->capture_default_str()
      ->check(non_negative_real);
  app.add_option("--clip", o.clip, "gradient-norm clip")->capture_default_str()->check(positive_real);
  app.add_option("--early-stop", o.early_stop, "stop at this validation accuracy (%)")->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--seed", o.seed, "seed of data, init and batch order")->capture_default_str();
  app.add_option("--threads", o.threads, "OpenMP threads (0: all)")->capture_default_str()->check(non_negative);
  app.add_option("--json", o.json_path, "write the result as JSON here");
  app.add_option("--checkpoint", o.checkpoint, "save model + optimiser here at every evaluation");
  app.add_option("--resume", o.resume, "resume from a --checkpoint file");
  app.add_option("--dump-lambda", o.dump_lambda, "write lambda (tokens x levels, per layer) of one validation sequence as JSON");
  app.add_flag("--print-diagnostics", o.print_diagnostics,
               "print, per layer and head, quantiles of exp(g) and lambda per level of the statistics forward "
               "(the first --batch validation sequences, final weights) "
               "(always written to the JSON under \"diagnostics\")");
  app.add_option("--corpus", o.corpus, "LM corpus (made by the build target kjv_corpus)")->capture_default_str();
  app.add_flag("--quick", o.quick, "small MQAR preset (T = 64, 8 pairs, <= 400 steps)");
  app.add_flag("!--no-progress", o.progress, "no progress bar");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loglinear-train: error: %s\n", e.what());
    return 2;
  }
}
