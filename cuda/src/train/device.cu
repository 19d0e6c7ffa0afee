// The "cuda" training device (loglinear/cuda/train/device.hpp): adapters of the GPU task model, the
// GPU Mamba-2 LM and the GPU optimiser to the training loop's Model and Optimizer.
#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/device.hpp>
#include <loglinear/cuda/nn/lm.hpp>
#include <loglinear/cuda/nn/task_model.hpp>
#include <loglinear/cuda/train/adamw.hpp>
#include <loglinear/cuda/train/clip.hpp>
#include <loglinear/cuda/train/device.hpp>

#include "../nn/attention.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::train {
namespace {

namespace lt = loglinear::train;

// A model whose parameters live on the GPU, as the optimiser sees it: the device parameters (in
// params() order) and the context they are updated on.
class CudaModel : public lt::Model {
 public:
  virtual std::vector<DeviceParam*> device_params() = 0;
  virtual Context& context() = 0;
};

// The adapter of a GPU model `Gpu` (cuda::nn::TaskModel, cuda::nn::MambaLm) built from its CPU twin
// `Host`. The CPU model of the same configuration and seed supplies the initial weights and keeps
// host copies of the parameters for checkpoints (download_params/upload_params). What differs
// between the two models (forward's arguments, the architecture entry, the layer counts) is in the
// two classes below.
template <class Host, class Gpu>
class CudaModelBase : public CudaModel {
 public:
  template <class Config>
  CudaModelBase(const Config& cfg, std::uint64_t seed, const lt::ModelConfig& arithmetic) : host_(cfg, seed), gpu_(host_) {
    // --matmul and --attention: the GEMMs' and the operator's arithmetic (both float32 by default).
    gpu_.context().set_matmul(matmul_from_name(arithmetic.matmul));
    gpu_.set_attention_precision(cuda::nn::precision_from_name(arithmetic.attention));
  }
  void backward() override { gpu_.backward(); }
  std::vector<Param<float>*> params() override { return host_.params(); }
  std::string architecture() const override { return host_.architecture(); }
  void zero_grad() override { gpu_.zero_grad(); }
  void download_params() override {
    const auto h = host_.params();
    const auto d = gpu_.params();
    for (size_t i = 0; i < h.size(); ++i) d[i]->download(*h[i], gpu_.context().stream());
  }
  void upload_params() override {
    const auto h = host_.params();
    const auto d = gpu_.params();
    for (size_t i = 0; i < h.size(); ++i) d[i]->upload(*h[i], gpu_.context().stream());
  }
  // The statistics read the last forward's g and lambda on the host: copied out on demand.
  const RowMatrix<float>& last_decay(Index i) const override {
    decay_cache_ = gpu_.last_decay(i).download(ctx().stream());
    return decay_cache_;
  }
  const RowMatrix<float>& last_lambda(Index i) const override {
    lambda_cache_ = gpu_.last_lambda(i).download(ctx().stream());
    return lambda_cache_;
  }
  std::vector<DeviceParam*> device_params() override { return gpu_.params(); }
  Context& context() override { return gpu_.context(); }

 protected:
  Context& ctx() const { return const_cast<Gpu&>(gpu_).context(); }
  Host host_;
  Gpu gpu_;
  mutable RowMatrix<float> decay_cache_, lambda_cache_;
};

// The task model on the GPU.
class CudaTaskModel final : public CudaModelBase<loglinear::nn::TaskModel<float>, cuda::nn::TaskModel> {
 public:
  CudaTaskModel(const lt::ModelConfig& cfg, Index vocab, Index levels, std::uint64_t seed)
      : CudaModelBase(lt::task_model_config(cfg, vocab, levels), seed, cfg) {}
  double forward(const tasks::Batch& b, Index* correct) override { return gpu_.forward(b, correct); }
  Index num_layers() const override { return host_.config().layers; }
  Index levels() const override { return host_.config().levels; }
};

// The log-linear Mamba-2 LM on the GPU, on the task batches as the CPU adapter (train/model.cpp):
// the same next-token targets, -1 = not scored.
class CudaMambaLm final : public CudaModelBase<loglinear::nn::MambaLm<float>, cuda::nn::MambaLm> {
 public:
  CudaMambaLm(const lt::ModelConfig& cfg, Index vocab, Index levels, std::uint64_t seed)
      : CudaModelBase(lt::lm_config(cfg, vocab, levels), seed, cfg) {}
  double forward(const tasks::Batch& b, Index* correct) override {
    return gpu_.forward(b.tokens.values(), b.targets.values(), b.tokens.dim(0), correct);
  }
  Index num_layers() const override { return host_.num_layers(); }
  Index levels() const override { return host_.config().mixer.levels; }
};

// Global-norm clipping and AdamW on a GPU model's device parameters.
class CudaOptimizer final : public lt::Optimizer {
 public:
  CudaOptimizer(CudaModel& model, double weight_decay)
      : model_(model), clip_(model.device_params()),
        adam_(model.device_params(), 0.9, 0.999, 1e-8, weight_decay, model.context()) {}
  void clip_grad_norm(double max_norm) override { clip_.clip(ctx(), max_norm); }
  void step(double lr) override { adam_.step(ctx(), lr); }
  long steps() const override { return adam_.steps(); }
  void set_steps(long t) override { adam_.set_steps(t); }
  std::vector<RowMatrix<float>> moments(int which) override { return adam_.moments(ctx(), which); }
  void set_moments(int which, const std::vector<RowMatrix<float>>& values) override {
    adam_.set_moments(ctx(), which, values);
  }

 private:
  Context& ctx() { return model_.context(); }
  CudaModel& model_;
  GlobalNormClip clip_;
  AdamW adam_;
};

}  // namespace

loglinear::train::Device cuda_device() {
  lt::Device d;
  d.name = "cuda";
  d.validate = [](const lt::ModelConfig& m) {
    if (m.mixer != "mamba2")
      throw std::invalid_argument("--device cuda: expected --mixer mamba2 (the Gated DeltaNet operator has no CUDA "
                                  "form; train it with --device cpu), got --mixer " + m.mixer);
    if (m.form != "chunked")
      throw std::invalid_argument("--device cuda: expected --form chunked (the GPU has only the chunked form), got --form " +
                                  m.form);
    if (m.chunk > kMaxGpuChunk)
      throw std::invalid_argument("--device cuda: expected --chunk <= 64 (the CUDA operator's shared-memory tiles), "
                                  "got --chunk " + std::to_string(m.chunk));
    if (!device_available())
      throw std::invalid_argument("--device cuda: no CUDA device is available on this machine (no GPU or no driver); "
                                  "train with --device cpu");
  };
  d.make_model = [](const lt::ModelConfig& cfg, Index vocab, Index levels, std::uint64_t seed) -> std::unique_ptr<lt::Model> {
    if (cfg.model == "task") return std::make_unique<CudaTaskModel>(cfg, vocab, levels, seed);
    if (cfg.model == "mamba2") return std::make_unique<CudaMambaLm>(cfg, vocab, levels, seed);
    throw std::invalid_argument("--model: expected one of task, mamba2, got \"" + cfg.model + "\"");
  };
  d.make_optimizer = [](lt::Model& model, double wd) -> std::unique_ptr<lt::Optimizer> {
    auto* gpu = dynamic_cast<CudaModel*>(&model);
    if (!gpu) throw std::logic_error("cuda device: the optimiser needs a model this device built");
    return std::make_unique<CudaOptimizer>(*gpu, wd);
  };
  d.describe = [] { return device_name(); };
  d.libraries = [] { return library_versions(); };
  d.peak_memory_bytes = [] { return double(DeviceMemory::peak()); };
  return d;
}

void register_cuda_device() { lt::register_device(cuda_device()); }

}  // namespace loglinear::cuda::train
