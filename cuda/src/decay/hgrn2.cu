// hgrn2 decay (SPEC.md §14.2, HGRN2 via xmixers) on the GPU: a = lb + (1 - lb) sigmoid(u), g = log a,
// with a per-layer, per-head lower bound lb from the model-level softmax table Gamma [layers, H]
// (hgrn2_lower_bounds), and hgrn2's stack that owns Gamma. GPU twin of
// reference/loglinear/decay/hgrn2.cpp. Elementwise kernels for g and du; d(lb) is a deterministic
// column sum; the table's softmax-cumsum and its backward run one thread per head, every sum in
// layer order. O(N H) per layer, O(layers H) for the table.
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/decay/decay.hpp>
#include <loglinear/cuda/decay/decay_stack.hpp>

#include "../core/activations.cuh"
#include "../core/launch.cuh"
#include "twin.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::decay {
namespace {

// g = logaddexp(log lb, log(1 - lb) + logsigmoid(u)): stays finite when lb = 0 and u << 0.
__global__ void hgrn2_forward(const float* __restrict__ u, const float* __restrict__ lb, std::int64_t n,
                              std::int64_t H, float* __restrict__ u_cache, float* __restrict__ g_cache,
                              float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float b = lb[i % H];
    const float x = u[i];
    const float hi = log1pf(-b) + device::log_sigmoid(x);
    float y;
    if (b == 0.f) {
      y = hi;
    } else {
      const float lo = logf(b);
      const float m = fmaxf(lo, hi);
      y = m + log1pf(expf(-fabsf(lo - hi)));
    }
    u_cache[i] = x;
    g_cache[i] = y;
    g[i] = y;
  }
}

// forward: a = lb + (1 - lb) sigma(u), g = log a. dg/du = (1 - lb) sigma (1 - sigma) / a, with
// (1 - lb) sigma / a = exp(log(1 - lb) + logsigmoid(u) - g) <= 1 (no 0/0 as a -> 0);
// dg/dlb = (1 - sigma) / a, written per element for the column sum.
__global__ void hgrn2_backward(const float* __restrict__ dg, const float* __restrict__ u, const float* __restrict__ g,
                               const float* __restrict__ lb, std::int64_t n, std::int64_t H, float* __restrict__ du,
                               float* __restrict__ dlb_terms) {
  LOGLINEAR_GRID_LOOP(i, n) {
    const float b = lb[i % H];
    const float one_minus_sigma = device::sigmoid(-u[i]);
    const float share = expf(log1pf(-b) + device::log_sigmoid(u[i]) - g[i]);
    du[i] = dg[i] * share * one_minus_sigma;
    dlb_terms[i] = dg[i] * one_minus_sigma * expf(-g[i]);
  }
}

// p = softmax over the L layers of Gamma[:, h] (max-shifted), lb_l = sum_{j=1..l} p_j. One thread
// per head; the sums run in layer order.
__global__ void lower_bounds_forward(const float* __restrict__ Gamma, std::int64_t L, std::int64_t H,
                                     float* __restrict__ lb) {
  LOGLINEAR_GRID_LOOP(h, H) {
    float m = Gamma[h];
    for (std::int64_t l = 1; l < L; ++l) m = fmaxf(m, Gamma[l * H + h]);
    float s = 0.f;
    for (std::int64_t l = 0; l < L; ++l) s += expf(Gamma[l * H + h] - m);
    float acc = 0.f;
    lb[h] = 0.f;
    for (std::int64_t l = 1; l < L; ++l) {
      acc += expf(Gamma[l * H + h] - m) / s;
      lb[l * H + h] = acc;
    }
  }
}

// dlb_l/dGamma_m = p_m ([1 <= m <= l] - lb_l): the indicator term is a reverse cumsum of dlb from
// row m on; the second term is sum_l dlb_l lb_l, the same for every m. One thread per head.
__global__ void lower_bounds_backward(const float* __restrict__ Gamma, const float* __restrict__ dlb, std::int64_t L,
                                      std::int64_t H, float* __restrict__ dGamma) {
  LOGLINEAR_GRID_LOOP(h, H) {
    float m = Gamma[h];
    for (std::int64_t l = 1; l < L; ++l) m = fmaxf(m, Gamma[l * H + h]);
    float s = 0.f;
    for (std::int64_t l = 0; l < L; ++l) s += expf(Gamma[l * H + h] - m);
    // dot = sum_l dlb_l lb_l, lb_0 = 0.
    float dot = 0.f, lb = 0.f;
    for (std::int64_t l = 1; l < L; ++l) {
      lb += expf(Gamma[l * H + h] - m) / s;
      dot += dlb[l * H + h] * lb;
    }
    float tail = 0.f;
    for (std::int64_t k = L - 1; k >= 0; --k) {
      tail += dlb[k * H + h];
      const float p = expf(Gamma[k * H + h] - m) / s;
      dGamma[k * H + h] += p * ((k >= 1 ? tail : 0.f) - dot);
    }
  }
}

class Hgrn2Impl final : public Hgrn2Decay {
 public:
  Hgrn2Impl(::loglinear::decay::Decay<float>& cpu, Context& ctx) : Hgrn2Decay(cpu.options().heads) {
    detail::twin_params(cpu, "hgrn2", {}, ctx);  // checks the key and that there are no parameters
    lb_.resize(1, H_);
    dlb_.resize(1, H_);
    lb_.set_zero(ctx.stream());
    dlb_.set_zero(ctx.stream());
  }
  std::string name() const override { return "hgrn2"; }

  void set_lower_bound(Context& ctx, const RowMatrix<float>& lb) override {
    if (lb.rows() != 1 || lb.cols() != H_)
      throw std::invalid_argument("lb: expected shape [B*T, H] with H = " + std::to_string(H_) +
                                  " and B*T = 1, got [" + std::to_string(lb.rows()) + "," + std::to_string(lb.cols()) +
                                  "]");
    for (Index h = 0; h < H_; ++h)
      if (!(lb(0, h) >= 0 && lb(0, h) < 1))
        throw std::invalid_argument("lb: expected every entry in [0, 1), got " + std::to_string(double(lb(0, h))) +
                                    " at head " + std::to_string(h));
    lb_.upload(lb, ctx.stream());
    ctx.synchronize();  // `lb` may be pageable host memory the caller frees next
    dlb_.set_zero(ctx.stream());
  }
  void set_lower_bound(Context& ctx, const DeviceMatrix& lbs, Index row) override {
    if (lbs.cols() != H_)
      throw std::invalid_argument("lbs: expected " + std::to_string(H_) + " columns (H), got " +
                                  std::to_string(lbs.cols()));
    if (row < 0 || row >= lbs.rows())
      throw std::invalid_argument("row: expected 0 <= row < " + std::to_string(lbs.rows()) + ", got " +
                                  std::to_string(row));
    cuda::copy_device(ctx, lb_.data(), lbs.data() + row * H_, H_);
    dlb_.set_zero(ctx.stream());
  }
  const DeviceMatrix& lower_bound_grad() const override { return dlb_; }

  void forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& g) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    u_.resize(u.rows(), H_);
    g_.resize(u.rows(), H_);
    g.resize(u.rows(), H_);
    hgrn2_forward<<<blocks_for(u.size()), kThreads, 0, ctx.stream()>>>(u.data(), lb_.data(), u.size(), H_, u_.data(),
                                                                      g_.data(), g.data());
    check_launch("hgrn2_forward");
  }

  void backward(Context& ctx, const DeviceMatrix& dg, DeviceMatrix& du) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    du.resize(dg.rows(), H_);
    terms_.resize(dg.rows(), H_);
    hgrn2_backward<<<blocks_for(dg.size()), kThreads, 0, ctx.stream()>>>(dg.data(), u_.data(), g_.data(), lb_.data(),
                                                                       dg.size(), H_, du.data(), terms_.data());
    check_launch("hgrn2_backward");
    column_sum(ctx, terms_, dlb_, /*accumulate=*/true);
  }

 private:
  DeviceMatrix lb_, dlb_;  // [1, H]
  DeviceMatrix u_, g_;     // cached input and output
  DeviceMatrix terms_;     // backward's per-element d(lb) terms
};

// Every layer's hgrn2 decay and the table Gamma [layers, H] they share. forward(): lb =
// hgrn2_lower_bounds(Gamma) on the device, row i to layer i. backward(): the layers' dlb rows
// through hgrn2_lower_bounds_backward into dGamma.
class Hgrn2Stack final : public DecayStack {
 public:
  Hgrn2Stack(std::vector<std::unique_ptr<Decay>> layers, std::vector<Hgrn2Decay*> impl, DeviceParam Gamma)
      : DecayStack("hgrn2", std::move(layers)), impl_(std::move(impl)), Gamma_(std::move(Gamma)) {}
  std::vector<DeviceParam*> shared_params() override { return {&Gamma_}; }
  void forward(Context& ctx) override {
    hgrn2_lower_bounds(ctx, Gamma_.value, lb_);
    for (std::size_t i = 0; i < impl_.size(); ++i) impl_[i]->set_lower_bound(ctx, lb_, Index(i));
  }
  void backward(Context& ctx) override {
    // forward: lb = hgrn2_lower_bounds(Gamma), row i the lower bound of layer i.
    const Index H = Gamma_.value.cols();
    dlb_.resize(Gamma_.value.rows(), H);
    for (std::size_t i = 0; i < impl_.size(); ++i)
      cuda::copy_device(ctx, dlb_.data() + Index(i) * H, impl_[i]->lower_bound_grad().data(), H);
    hgrn2_lower_bounds_backward(ctx, Gamma_.value, dlb_, Gamma_.grad);
  }

 private:
  std::vector<Hgrn2Decay*> impl_;  // the same objects as layers_, seen as hgrn2
  DeviceParam Gamma_;
  DeviceMatrix lb_, dlb_;          // [layers, H]
};

}  // namespace

std::unique_ptr<Decay> make_hgrn2(::loglinear::decay::Decay<float>& cpu, Context& ctx) {
  return std::make_unique<Hgrn2Impl>(cpu, ctx);
}

std::unique_ptr<DecayStack> make_hgrn2_stack(::loglinear::decay::DecayStack<float>& cpu, Context& ctx) {
  if (cpu.name() != "hgrn2") throw std::invalid_argument("cpu: expected an hgrn2 stack, got " + cpu.name());
  const auto shared = cpu.shared_params();
  const Index layers = cpu.size(), H = cpu.layer(0).options().heads;
  if (shared.size() != 1 || shared[0]->value.rows() != layers || shared[0]->value.cols() != H)
    throw std::invalid_argument("cpu: expected hgrn2's one shared parameter Gamma [" + std::to_string(layers) + ", " +
                                std::to_string(H) + "]");
  std::vector<std::unique_ptr<Decay>> ls;
  std::vector<Hgrn2Decay*> impl;
  for (Index i = 0; i < layers; ++i) {
    auto d = std::make_unique<Hgrn2Impl>(cpu.layer(i), ctx);
    impl.push_back(d.get());
    ls.push_back(std::move(d));
  }
  return std::make_unique<Hgrn2Stack>(std::move(ls), std::move(impl), DeviceParam(*shared[0], ctx.stream()));
}

void hgrn2_lower_bounds(Context& ctx, const DeviceMatrix& Gamma, DeviceMatrix& lb) {
  if (Gamma.rows() < 1 || Gamma.cols() < 1)
    throw std::invalid_argument("Gamma: expected shape [L, H] with L, H >= 1, got [" + std::to_string(Gamma.rows()) +
                                "," + std::to_string(Gamma.cols()) + "]");
  lb.resize(Gamma.rows(), Gamma.cols());
  lower_bounds_forward<<<blocks_for(Gamma.cols()), kThreads, 0, ctx.stream()>>>(Gamma.data(), Gamma.rows(),
                                                                                Gamma.cols(), lb.data());
  check_launch("lower_bounds_forward");
}

void hgrn2_lower_bounds_backward(Context& ctx, const DeviceMatrix& Gamma, const DeviceMatrix& dlb,
                                 DeviceMatrix& dGamma) {
  if (dlb.rows() != Gamma.rows() || dlb.cols() != Gamma.cols())
    throw std::invalid_argument("dlb: expected the shape of Gamma [" + std::to_string(Gamma.rows()) + "," +
                                std::to_string(Gamma.cols()) + "], got [" + std::to_string(dlb.rows()) + "," +
                                std::to_string(dlb.cols()) + "]");
  if (dGamma.rows() != Gamma.rows() || dGamma.cols() != Gamma.cols())
    throw std::invalid_argument("dGamma: expected the shape of Gamma [" + std::to_string(Gamma.rows()) + "," +
                                std::to_string(Gamma.cols()) + "]");
  lower_bounds_backward<<<blocks_for(Gamma.cols()), kThreads, 0, ctx.stream()>>>(Gamma.data(), dlb.data(),
                                                                                 Gamma.rows(), Gamma.cols(),
                                                                                 dGamma.data());
  check_launch("lower_bounds_backward");
}

}  // namespace loglinear::cuda::decay
