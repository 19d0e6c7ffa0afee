// GPU twin of reference/loglinear/lambda/lambda.cpp (SPEC.md §7): the lambda interface's shape
// checks and [N, H*L] <-> [N*H, L] views (free: row-major), and the factory that builds the twin of
// a CPU twin by its name. Each mode's kernels live in the file named after its key. No cost of its
// own beyond the mode's.
#include <loglinear/cuda/lambda/lambda.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::cuda::lambda {

void LevelWeights::forward(Context& ctx, const DeviceMatrix& dl, DeviceMatrix& lam) {
  if (dl.cols() != H_ * L_) {
    throw std::invalid_argument("dl: expected " + std::to_string(H_ * L_) + " columns (H*L), got " +
                                std::to_string(dl.cols()));
  }
  rows_ = dl.rows();
  lam.resize(rows_, H_ * L_);
  // One row per (token, head): [N*H, L], the same memory.
  forward_rows(ctx, dl.data(), rows_ * H_, lam.data());
}

void LevelWeights::backward(Context& ctx, const DeviceMatrix& dlam, DeviceMatrix& ddl) {
  if (rows_ < 0 || dlam.rows() != rows_ || dlam.cols() != H_ * L_) {
    throw std::invalid_argument("dlam: expected shape [" + std::to_string(rows_) + "," + std::to_string(H_ * L_) +
                                "] of the last forward's lam, got [" + std::to_string(dlam.rows()) + "," +
                                std::to_string(dlam.cols()) + "]");
  }
  ddl.resize(rows_, H_ * L_);
  backward_rows(ctx, dlam.data(), rows_ * H_, ddl.data());
}

std::unique_ptr<LevelWeights> make_level_weights(::loglinear::lambda::LevelWeights<float>& cpu, Context& ctx) {
  const std::string key = cpu.name();
  if (key == "fixed") return make_fixed(cpu, ctx);
  if (key == "constant") return make_constant(cpu, ctx);
  if (key == "mlp_softplus") return make_mlp_softplus(cpu, ctx);
  if (key == "mlp_softmax") return make_mlp_softmax(cpu, ctx);
  std::string known;
  for (const auto& n : ::loglinear::lambda::lambda_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("lambda: expected one of " + known + ", got \"" + key + "\"");
}

std::unique_ptr<LevelWeights> make_level_weights(::loglinear::lambda::LevelWeights<float>& cpu, Index heads,
                                                 Index levels, Context& ctx) {
  if (cpu.heads() != heads)
    throw std::invalid_argument("heads: expected the CPU twin's " + std::to_string(cpu.heads()) + ", got " +
                                std::to_string(heads));
  if (cpu.levels() != levels)
    throw std::invalid_argument("levels: expected the CPU twin's " + std::to_string(cpu.levels()) + ", got " +
                                std::to_string(levels));
  return make_level_weights(cpu, ctx);
}

}  // namespace loglinear::cuda::lambda
