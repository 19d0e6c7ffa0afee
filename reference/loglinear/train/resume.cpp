// Saving and resuming a run (resume.hpp). The settings check compares JSON objects key by key:
// a file written before a key existed is judged on the keys it has.
#include <loglinear/train/checkpoint.hpp>
#include <loglinear/train/resume.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace loglinear::train {
namespace {
using json = nlohmann::json;

// Parameters followed by their AdamW moments, the checkpoint's entry list.
struct Entries {
  std::vector<Param<float>> moments;
  std::vector<Param<float>*> list;
};
Entries entries_of(Model& model, Optimizer& opt) {
  Entries e;
  auto params = model.params();
  const auto m = opt.moments(0), v = opt.moments(1);
  for (size_t i = 0; i < params.size(); ++i) {
    e.moments.emplace_back("adam.m." + params[i]->name, m[i], false);
    e.moments.emplace_back("adam.v." + params[i]->name, v[i], false);
  }
  e.list = params;
  for (auto& p : e.moments) e.list.push_back(&p);
  return e;
}

// A resumed run must continue the same run: every setting that changes the data, the model or
// the optimisation must match the file's (--steps may change only without warm-up, since the
// cosine schedule spans all steps).
void check_resume_config(const json& then, const json& now, const std::string& path) {
  auto differs = [&](const std::string& key) {
    return then.contains(key) && (!now.contains(key) || now.at(key) != then.at(key));
  };
  auto refuse = [&](const std::string& key, const std::string& why) {
    throw std::invalid_argument("--resume: " + path + " was written with " + key + " = " + then.at(key).dump() +
                                ", this run has " + key + " = " + (now.contains(key) ? now.at(key).dump() : "(none)") +
                                "; " + why);
  };
  // The model and the task first: they explain every other difference.
  for (const char* key : {"model", "task"})
    if (differs(key)) refuse(key, "resume with the same --model and --task");
  // A file written before --mixer existed has no "mixer": it was a mamba2 run.
  const json then_mixer = then.value("mixer", json("mamba2")), now_mixer = now.value("mixer", json("mamba2"));
  if (then_mixer != now_mixer)
    throw std::invalid_argument("--resume: " + path + " was written with mixer = " + then_mixer.dump() +
                                (then.contains("mixer") ? "" : " (no mixer recorded: an older file, hence mamba2)") +
                                ", this run has mixer = " + now_mixer.dump() + "; resume with the same --mixer");
  if (differs("levels")) {
    refuse("levels", "levels = num_levels(max(--length, --eval-len)) sizes the lambda parameters, so --eval-len "
                     "may change on resume only if it keeps that number");
  }
  if (differs("steps") && then.value("warmup", 0) != 0) {
    refuse("steps", "with --warmup the cosine schedule spans all --steps, so they may not change on resume");
  }
  for (const auto& item : then.items()) {
    const std::string& key = item.key();
    // --device, --matmul and --attention change the arithmetic, not the model: checkpoints move
    // between them.
    if (key == "threads" || key == "eval_len" || key == "early_stop" || key == "steps" || key == "min_steps" ||
        key == "device" || key == "matmul" || key == "attention")
      continue;
    if (differs(key))
      refuse(key, "resume with the same settings (only --steps, --min-steps, --threads, --eval-len, --early-stop, "
                  "--device, --matmul and --attention may change)");
  }
}
}  // namespace

void save_run(const std::string& path, Model& model, Optimizer& opt, const RunState& s,
              const std::string& config_json) {
  model.download_params();
  Entries e = entries_of(model, opt);
  save_checkpoint(path, e.list, model.architecture());
  const json state = {{"step", s.step},
                      {"history", json::parse(s.history_json)},
                      {"best_accuracy", s.best_accuracy},
                      {"wall_time_s", s.wall_time_s},
                      {"train_time_s", s.train_time_s},
                      {"train_tokens", s.train_tokens},
                      {"config", json::parse(config_json)},
                      {"first_train_loss", s.first_train_loss}};
  // Written beside and renamed into place, as the checkpoint itself, so that a run killed while
  // saving leaves the previous state file whole.
  const std::string tmp = path + ".json.tmp";
  {
    std::ofstream f(tmp);
    if (!(f << state.dump(2) << "\n")) throw std::runtime_error("--checkpoint: cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), (path + ".json").c_str()) != 0)
    throw std::runtime_error("--checkpoint: cannot rename " + tmp + " to " + path + ".json");
}

RunState load_run(const std::string& path, Model& model, Optimizer& opt, const std::string& config_json) {
  std::ifstream f(path + ".json");
  if (!f) throw std::runtime_error("--resume: cannot read " + path + ".json (written next to every --checkpoint)");
  json state;
  try {
    state = json::parse(f);
  } catch (const json::exception& e) {
    throw std::runtime_error("--resume: " + path + ".json is not valid JSON: " + e.what());
  }
  if (!state.is_object() || !state.contains("step") || !state.contains("history"))
    throw std::runtime_error("--resume: " + path + ".json lacks \"step\" or \"history\"; is it a --checkpoint file?");
  // Checkpoints written before the settings were recorded are judged by names and shapes alone.
  if (state.contains("config")) check_resume_config(state.at("config"), json::parse(config_json), path);
  Entries e = entries_of(model, opt);
  load_checkpoint(path, e.list, model.architecture());
  const size_t n = model.params().size();
  std::vector<RowMatrix<float>> m, v;
  for (size_t i = 0; i < n; ++i) {
    m.push_back(e.moments[2 * i].value);
    v.push_back(e.moments[2 * i + 1].value);
  }
  opt.set_moments(0, m);
  opt.set_moments(1, v);
  model.upload_params();
  RunState s;
  try {
    s.step = state.at("step").get<long>();
    s.history_json = state.at("history").dump();
    s.best_accuracy = state.value("best_accuracy", 0.0);
    s.wall_time_s = state.value("wall_time_s", 0.0);
    s.train_time_s = state.value("train_time_s", s.wall_time_s);  // older files: wall time is the best we have
    s.train_tokens = state.value("train_tokens", 0.0);
    s.first_train_loss = state.value("first_train_loss", -1.0);
  } catch (const json::exception& e) {
    throw std::runtime_error("--resume: " + path + ".json has a field of the wrong type: " + e.what());
  }
  opt.set_steps(s.step);
  return s;
}

}  // namespace loglinear::train
