// The two models behind train::Model (model.hpp): thin adapters, no training logic.
#include <loglinear/attention/forms.hpp>
#include <loglinear/nn/lm.hpp>
#include <loglinear/nn/task_model.hpp>
#include <loglinear/train/model.hpp>

#include <stdexcept>

namespace loglinear::train {
namespace {

class TaskModelAdapter final : public Model {
 public:
  TaskModelAdapter(const nn::TaskModelConfig& cfg, std::uint64_t seed) : m_(cfg, seed) {}
  double forward(const tasks::Batch& b, Index* correct) override { return m_.forward(b, correct); }
  void backward() override { m_.backward(); }
  std::vector<Param<float>*> params() override { return m_.params(); }
  std::string architecture() const override { return m_.architecture(); }
  Index num_layers() const override { return m_.config().layers; }
  Index levels() const override { return m_.config().levels; }
  const RowMatrix<float>& last_decay(Index i) const override { return m_.last_decay(i); }
  const RowMatrix<float>& last_lambda(Index i) const override { return m_.last_lambda(i); }

 private:
  nn::TaskModel<float> m_;
};

// The LM of nn/lm.hpp on the task batches: the same next-token targets, -1 = not scored.
class MambaLmAdapter final : public Model {
 public:
  MambaLmAdapter(const nn::LmConfig& cfg, std::uint64_t seed) : m_(cfg, seed), L_(cfg.mixer.levels) {}
  double forward(const tasks::Batch& b, Index* correct) override {
    return m_.forward(b.tokens.values(), b.targets.values(), b.tokens.dim(0), correct);
  }
  void backward() override { m_.backward(); }
  std::vector<Param<float>*> params() override { return m_.params(); }
  std::string architecture() const override { return m_.architecture(); }
  Index num_layers() const override { return m_.num_layers(); }
  Index levels() const override { return L_; }
  const RowMatrix<float>& last_decay(Index i) const override { return m_.last_decay(i); }
  const RowMatrix<float>& last_lambda(Index i) const override { return m_.last_lambda(i); }

 private:
  nn::MambaLm<float> m_;
  Index L_;
};

Form parse_form_flag(const std::string& name) {
  try {
    return parse_form(name);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("--form: ") + e.what());
  }
}

}  // namespace

nn::TaskModelConfig task_model_config(const ModelConfig& c, Index vocab, Index levels) {
  return {vocab, c.d_model, c.layers, c.heads, levels, c.mlp_hidden, c.chunk, c.lambda, parse_form_flag(c.form),
          c.decay, c.mixer, c.decay_p};
}

nn::LmConfig lm_config(const ModelConfig& c, Index vocab, Index levels) {
  if (c.decay != "mamba2")
    throw std::invalid_argument("--decay: --model mamba2 has the Mamba-2 layer's own decay (SPEC.md §8), "
                                "expected mamba2, got \"" + c.decay + "\" (other decays: --model task)");
  // SPEC.md §8's block: d_inner = expand * d_model = H * V, one group of K = d_state, SwiGLU
  // of hidden width ffn_hidden (0: 4 * d_model, fla's hidden_ratio).
  nn::LmConfig cfg;
  cfg.vocab = vocab;
  cfg.d_model = c.d_model;
  cfg.layers = c.layers;
  cfg.mlp_hidden = c.ffn_hidden > 0 ? c.ffn_hidden : 4 * c.d_model;
  cfg.mixer.expand = c.expand;
  cfg.mixer.heads = c.heads;
  cfg.mixer.n_groups = 1;
  cfg.mixer.d_state = c.d_state;
  cfg.mixer.levels = levels;
  cfg.mixer.lambda = c.lambda;
  cfg.mixer.lambda_hidden = c.mlp_hidden;
  cfg.mixer.form = parse_form_flag(c.form);
  cfg.mixer.chunk = c.chunk;
  cfg.mixer_kind = c.mixer;
  return cfg;
}

std::unique_ptr<Model> make_model(const ModelConfig& c, Index vocab, Index levels, std::uint64_t seed) {
  if (c.model == "task") return std::make_unique<TaskModelAdapter>(task_model_config(c, vocab, levels), seed);
  if (c.model == "mamba2") return std::make_unique<MambaLmAdapter>(lm_config(c, vocab, levels), seed);
  throw std::invalid_argument("--model: expected one of task, mamba2, got \"" + c.model + "\"");
}

}  // namespace loglinear::train
