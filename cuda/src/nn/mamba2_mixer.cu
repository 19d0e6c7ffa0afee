// The log-linear Mamba-2 mixer on the GPU (loglinear/cuda/nn/mamba2_mixer.hpp). Every block names
// the CPU line it mirrors (reference/loglinear/nn/mamba2_mixer.cpp). The column slices of in_proj's
// output [z | xBC | dt_raw | dl] and of xBC = [x | Bm | Cm] are strided views of row-major
// matrices: copy_cols moves one slice into (or out of) its own contiguous matrix, which is what the
// layers and the operator take; the per-head steps (dt, v = x dt, the D skip, their backward) are
// kernels that read the slices in place. Per-head parameter gradients are written as per-row
// partials [N, H] and summed over rows by column_sum (fixed order, no atomics).
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>
#include <loglinear/cuda/chunked.hpp>
#include <loglinear/cuda/core/activations.hpp>
#include <loglinear/cuda/core/elementwise.hpp>
#include <loglinear/cuda/core/reduce.hpp>
#include <loglinear/cuda/lambda/lambda.hpp>
#include <loglinear/cuda/nn/conv1d.hpp>
#include <loglinear/cuda/nn/linear.hpp>
#include <loglinear/cuda/nn/mamba2_mixer.hpp>
#include <loglinear/cuda/nn/rmsnorm.hpp>

#include "../core/activations.cuh"
#include "attention.cuh"
#include "../core/launch.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {
enum P { in_proj, conv_w, conv_b, dt_bias, A_log, D, norm_w, out_proj };
constexpr const char* kNames[] = {"in_proj", "conv_w", "conv_b", "dt_bias", "A_log", "D", "norm_w", "out_proj"};

// dst[n, dc0 + j] = src[n, sc0 + j] for n < N, j < w: one column slice of a row-major matrix with
// ld_src columns into another with ld_dst columns. One thread per element, consecutive threads on
// consecutive columns, so both sides are read and written in runs of w floats.
__global__ void copy_cols_kernel(const float* __restrict__ src, std::int64_t ld_src, std::int64_t sc0,
                                 float* __restrict__ dst, std::int64_t ld_dst, std::int64_t dc0, std::int64_t N,
                                 std::int64_t w) {
  LOGLINEAR_GRID_LOOP(i, N * w) {
    const std::int64_t n = i / w, j = i - n * w;
    dst[n * ld_dst + dc0 + j] = src[n * ld_src + sc0 + j];
  }
}

void copy_cols(Context& ctx, const float* src, Index ld_src, Index sc0, float* dst, Index ld_dst, Index dc0, Index N,
               Index w) {
  if (N * w == 0) return;
  copy_cols_kernel<<<blocks_for(N * w), kThreads, 0, ctx.stream()>>>(src, ld_src, sc0, dst, ld_dst, dc0, N, w);
  check_launch("copy_cols_kernel");
}

// forward: dt = softplus(dt_raw + dt_bias), g = -exp(A_log) dt, per (n, h); dt_raw is column
// dt0 + h of in_proj's output zx [N, P]. dt_pre is kept for the backward's softplus' = sigmoid.
__global__ void dt_forward_kernel(const float* __restrict__ zx, std::int64_t P, std::int64_t dt0,
                                  const float* __restrict__ bias, const float* __restrict__ alog, std::int64_t N, int H,
                                  float* __restrict__ dt_pre, float* __restrict__ dt, float* __restrict__ g) {
  LOGLINEAR_GRID_LOOP(i, N * H) {
    const std::int64_t n = i / H;
    const int h = int(i - n * H);
    const float pre = zx[n * P + dt0 + h] + bias[h];
    const float d = device::softplus(pre);
    dt_pre[i] = pre;
    dt[i] = d;
    g[i] = -expf(alog[h]) * d;  // the CPU's -exp(A_log) * dt, in that order
  }
}

// forward: [x | Bm | Cm] = xBC; v = x dt per head (x's column c belongs to head c / V), k = Bm,
// q = Cm, each into its own contiguous matrix (the operator's [B,T,H,V] and [B,T,G,K] layouts).
__global__ void split_xbc_kernel(const float* __restrict__ xbc, const float* __restrict__ dt, std::int64_t N,
                                 std::int64_t conv_dim, std::int64_t d_inner, std::int64_t GK, int V, int H,
                                 float* __restrict__ v, float* __restrict__ k, float* __restrict__ q) {
  LOGLINEAR_GRID_LOOP(i, N * conv_dim) {
    const std::int64_t n = i / conv_dim, c = i - n * conv_dim;
    const float val = xbc[i];
    if (c < d_inner)
      v[n * d_inner + c] = val * dt[n * H + c / V];
    else if (c < d_inner + GK)
      k[n * GK + (c - d_inner)] = val;
    else
      q[n * GK + (c - d_inner - GK)] = val;
  }
}

// forward: y = o + D x per head (the skip reads x, xBC's first d_inner columns, before the dt scaling).
__global__ void skip_forward_kernel(const float* __restrict__ o, const float* __restrict__ xbc,
                                    const float* __restrict__ Dh, std::int64_t N, std::int64_t conv_dim,
                                    std::int64_t d_inner, int V, float* __restrict__ y) {
  LOGLINEAR_GRID_LOOP(i, N * d_inner) {
    const std::int64_t n = i / d_inner, c = i - n * d_inner;
    y[i] = o[i] + Dh[c / V] * xbc[n * conv_dim + c];
  }
}

// Backward of the per-head steps, one thread per (n, h), the V columns of head h in order:
//   y = o + D x        -> dx = D dy,          dD  += <dy, x>   (partial dD_rows[n, h])
//   v = x dt           -> dx += dv dt,        ddt  = <dv, x>
//   g = -exp(A_log) dt -> ddt -= exp(A_log) dg, dA_log += dg g  (partial dA_rows[n, h])
//   dt = softplus(pre) -> ddt_raw = ddt sigmoid(pre); dt_bias's gradient is its column sum.
// dx goes into xBC's gradient dxbc [N, conv_dim] (first d_inner columns), ddt_raw both into
// ddt_rows [N, H] (for the column sum) and into column dt0 + h of in_proj's output gradient dzx.
__global__ void heads_backward_kernel(const float* __restrict__ dy, const float* __restrict__ dv,
                                      const float* __restrict__ dg, const float* __restrict__ xbc,
                                      const float* __restrict__ dt, const float* __restrict__ dt_pre,
                                      const float* __restrict__ g, const float* __restrict__ Dh,
                                      const float* __restrict__ alog, std::int64_t N, int H, int V,
                                      std::int64_t conv_dim, std::int64_t P, std::int64_t dt0,
                                      float* __restrict__ dxbc, float* __restrict__ dzx,
                                      float* __restrict__ dD_rows, float* __restrict__ dA_rows,
                                      float* __restrict__ ddt_rows) {
  LOGLINEAR_GRID_LOOP(i, N * H) {
    const std::int64_t n = i / H;
    const int h = int(i - n * H);
    const std::int64_t d_inner = std::int64_t(H) * V;
    const std::int64_t a = n * d_inner + std::int64_t(h) * V;   // dy, dv: [N, d_inner]
    const std::int64_t b = n * conv_dim + std::int64_t(h) * V;  // xbc, dxbc: [N, conv_dim]
    const float Dv = Dh[h], dtv = dt[i];
    float dD = 0.f, dvx = 0.f;
    for (int j = 0; j < V; ++j) {
      const float x = xbc[b + j], dyj = dy[a + j], dvj = dv[a + j];
      dxbc[b + j] = Dv * dyj + dvj * dtv;
      dD += dyj * x;
      dvx += dvj * x;
    }
    const float ddt = dvx - expf(alog[h]) * dg[i];
    const float ddt_raw = ddt * device::sigmoid(dt_pre[i]);
    dD_rows[i] = dD;
    dA_rows[i] = dg[i] * g[i];
    ddt_rows[i] = ddt_raw;
    dzx[n * P + dt0 + h] = ddt_raw;
  }
}

}  // namespace

struct Mamba2Mixer::Impl {
  // What a call needs only while it runs: in_proj's output and the slices that the gated norm and
  // lambda copy into caches of their own, y (likewise), and every backward gradient. Nothing here
  // lives from a forward to its backward, so mixers that run one after another on one stream can
  // share one set (the LM's blocks do: share_temporaries).
  struct Temporaries {
    DeviceMatrix zx, z, dl, y;
    DeviceMatrix dyn, dy, dz, dq, dk, dv, dg, dlam, dxbc, dxbc_raw, ddl, dzx, dD_rows, dA_rows, ddt_rows;
  };
  Index H = 0, L = 0, G = 0, K = 0, V = 0, d_inner = 0, conv_dim = 0, P = 0;
  Precision attention = Precision::fp32;  // the operator's storage (set_attention_precision)
  std::vector<DeviceParam> p;  // P order
  std::unique_ptr<lambda::LevelWeights> lam;
  // Cache of the last forward, [N, features] with N = B*T (u is a copy, as the CPU's u_).
  Index B = 0, T = 0;
  bool pending = false;
  DeviceMatrix u, xbc_raw, xbc_pre, xbc, dt_pre, dt, g, v, q, k, lamv, o, yn;
  GatedRmsNormCache norm;
  // Temporaries, possibly shared with other mixers (share_temporaries).
  std::shared_ptr<Temporaries> t = std::make_shared<Temporaries>();

  AttentionDims dims() const { return {B, T, H, G, K, V, L}; }
  ChunkedOptions opts(Index chunk) const { return {effective_chunk_size(chunk, T)}; }
};

Mamba2Mixer::Mamba2Mixer(loglinear::nn::Mamba2Mixer<float>& cpu, Context& ctx)
    : cfg_(cpu.config()), impl_(std::make_unique<Impl>()) {
  if (cfg_.form != Form::chunked)
    throw std::invalid_argument("form: expected chunked on the GPU (the CUDA backend has only the chunked form), got " +
                                form_name(cfg_.form));
  if (cfg_.chunk > kMaxGpuChunk || (cfg_.chunk & (cfg_.chunk - 1)) != 0)
    throw std::invalid_argument("chunk: expected a power of two <= 64 on the GPU (the operator's shared-memory "
                                "tiles), got " + std::to_string(cfg_.chunk));
  Impl& m = *impl_;
  m.H = cfg_.heads;
  m.L = cfg_.levels;
  m.G = cfg_.n_groups;
  m.K = cfg_.d_state;
  m.d_inner = cfg_.expand * cfg_.d_model;
  m.V = m.d_inner / m.H;
  m.conv_dim = m.d_inner + 2 * m.G * m.K;
  m.P = m.d_inner + m.conv_dim + m.H + m.H * m.L;
  // The CPU mixer lists its own eight tensors first (prefix + kNames[i]), then lambda's.
  const auto cpu_params = cpu.params();
  for (int i = 0; i < 8; ++i) {
    const std::string& name = cpu_params[size_t(i)]->name;
    const std::string want = kNames[i];
    if (name.size() < want.size() || name.compare(name.size() - want.size(), want.size(), want) != 0)
      throw std::logic_error("cuda::nn::Mamba2Mixer: the CPU mixer's parameter " + std::to_string(i) + " is " + name +
                             ", expected ..." + want);
    m.p.emplace_back(*cpu_params[size_t(i)], ctx.stream());
  }
  m.lam = lambda::make_level_weights(cpu.level_weights(), m.H, m.L, ctx);
  check_same_params("cuda::nn::Mamba2Mixer", cpu_params, params());
}

Mamba2Mixer::~Mamba2Mixer() = default;
Mamba2Mixer::Mamba2Mixer(Mamba2Mixer&&) noexcept = default;

std::vector<DeviceParam*> Mamba2Mixer::params() {
  std::vector<DeviceParam*> out;
  for (auto& p : impl_->p) out.push_back(&p);
  for (auto* p : impl_->lam->params()) out.push_back(p);
  return out;
}

void Mamba2Mixer::forward(Context& ctx, const DeviceMatrix& u, Index B, DeviceMatrix& out) {
  Impl& m = *impl_;
  const Index H = m.H, G = m.G, K = m.K, V = m.V, d_inner = m.d_inner, conv_dim = m.conv_dim, P = m.P;
  // The CPU twin's checks and messages, before anything is queued.
  if (u.cols() != cfg_.d_model || B < 1 || u.rows() % B != 0)
    throw std::invalid_argument("u: expected shape [B*T, d_model] with d_model = " + std::to_string(cfg_.d_model) +
                                " and rows divisible by B = " + std::to_string(B) + ", got [" +
                                std::to_string(u.rows()) + "," + std::to_string(u.cols()) + "]");
  const Index N = u.rows(), T = N / B;
  if (num_levels(T) > m.L)
    throw std::invalid_argument("levels: expected >= num_levels(T) = " + std::to_string(num_levels(T)) +
                                " for T = " + std::to_string(T) + ", got " + std::to_string(m.L));
  const cudaStream_t s = ctx.stream();
  Impl::Temporaries& t = *m.t;
  m.B = B;
  m.T = T;
  m.pending = false;
  copy(ctx, u, m.u);
  // [z | xBC | dt_raw | dl] = in_proj(u), in this order; each slice into its own matrix.
  linear_forward(ctx, m.u, m.p[in_proj].value, t.zx);
  t.z.resize(N, d_inner);
  m.xbc_raw.resize(N, conv_dim);
  t.dl.resize(N, H * m.L);
  copy_cols(ctx, t.zx.data(), P, 0, t.z.data(), d_inner, 0, N, d_inner);
  copy_cols(ctx, t.zx.data(), P, d_inner, m.xbc_raw.data(), conv_dim, 0, N, conv_dim);
  copy_cols(ctx, t.zx.data(), P, d_inner + conv_dim + H, t.dl.data(), H * m.L, 0, N, H * m.L);
  conv1d_forward(ctx, m.xbc_raw, B, m.p[conv_w].value, m.p[conv_b].value, m.xbc_pre);
  silu_forward(ctx, m.xbc_pre, m.xbc);
  // dt = softplus(dt_raw + dt_bias), g = -exp(A_log) dt.
  m.dt_pre.resize(N, H);
  m.dt.resize(N, H);
  m.g.resize(N, H);
  if (N * H > 0) {
    dt_forward_kernel<<<blocks_for(N * H), kThreads, 0, s>>>(t.zx.data(), P, d_inner + conv_dim,
                                                             m.p[dt_bias].value.data(), m.p[A_log].value.data(), N,
                                                             int(H), m.dt_pre.data(), m.dt.data(), m.g.data());
    check_launch("dt_forward_kernel");
  }
  // [x | Bm | Cm] = xBC; v = x dt per head; k = Bm, q = Cm.
  m.v.resize(N, d_inner);
  m.k.resize(N, G * K);
  m.q.resize(N, G * K);
  if (N * conv_dim > 0) {
    split_xbc_kernel<<<blocks_for(N * conv_dim), kThreads, 0, s>>>(m.xbc.data(), m.dt.data(), N, conv_dim, d_inner,
                                                                   G * K, int(V), int(H), m.v.data(), m.k.data(),
                                                                   m.q.data());
    check_launch("split_xbc_kernel");
  }
  m.lam->forward(ctx, t.dl, m.lamv);
  // o = LogLinearAttention(q = Cm, k = Bm, v, g, lam), G groups of q and k.
  m.o.resize(N, d_inner);
  const AttentionDims dims = m.dims();
  const ChunkedOptions opts = m.opts(cfg_.chunk);
  attention_forward(ctx, m.attention, {m.q.data(), m.k.data(), m.v.data(), m.g.data(), m.lamv.data()}, dims, opts,
                    m.o.data());
  // y = o + D x; gated norm per group with z; out_proj.
  t.y.resize(N, d_inner);
  if (N * d_inner > 0) {
    skip_forward_kernel<<<blocks_for(N * d_inner), kThreads, 0, s>>>(m.o.data(), m.xbc.data(), m.p[D].value.data(), N,
                                                                     conv_dim, d_inner, int(V), t.y.data());
    check_launch("skip_forward_kernel");
  }
  gated_rmsnorm_forward(ctx, t.y, t.z, m.p[norm_w].value, m.norm, m.yn, G);
  linear_forward(ctx, m.yn, m.p[out_proj].value, out);
  m.pending = true;
}

void Mamba2Mixer::backward(Context& ctx, const DeviceMatrix& dout, DeviceMatrix& du) {
  Impl& m = *impl_;
  if (!m.pending) throw std::logic_error("cuda::nn::Mamba2Mixer::backward: expected a forward() first");
  const Index H = m.H, G = m.G, K = m.K, V = m.V, d_inner = m.d_inner, conv_dim = m.conv_dim, P = m.P;
  const Index B = m.B, N = m.B * m.T;
  if (dout.rows() != N || dout.cols() != cfg_.d_model)
    throw std::invalid_argument("dout: expected the forward's shape [" + std::to_string(N) + "," +
                                std::to_string(cfg_.d_model) + "], got [" + std::to_string(dout.rows()) + "," +
                                std::to_string(dout.cols()) + "]");
  m.pending = false;
  const cudaStream_t s = ctx.stream();
  Impl::Temporaries& t = *m.t;
  auto& p = m.p;
  // forward: out = yn out_proj^T; yn = gated_rmsnorm(y, z).
  linear_backward(ctx, m.yn, p[out_proj].value, dout, p[out_proj].grad, t.dyn);
  gated_rmsnorm_backward(ctx, t.dyn, p[norm_w].value, m.norm, p[norm_w].grad, t.dy, t.dz);
  // forward: o = LogLinearAttention(q = Cm, k = Bm, v, g, lam) with do = dy (y = o + D x); the
  // operator overwrites its gradients.
  t.dq.resize(N, G * K);
  t.dk.resize(N, G * K);
  t.dv.resize(N, d_inner);
  t.dg.resize(N, H);
  t.dlam.resize(N, H * m.L);
  const AttentionDims dims = m.dims();
  const ChunkedOptions opts = m.opts(cfg_.chunk);
  attention_backward(ctx, m.attention, {m.q.data(), m.k.data(), m.v.data(), m.g.data(), m.lamv.data()}, dims, opts,
                     t.dy.data(), {t.dq.data(), t.dk.data(), t.dv.data(), t.dg.data(), t.dlam.data()});
  // forward: y = o + D x, v = x dt, g = -exp(A_log) dt, dt = softplus(dt_raw + dt_bias): the
  // x columns of dxBC, ddt_raw and the per-row partials of dD, dA_log, ddt_bias in one kernel;
  // then k = Bm and q = Cm send dk, dq to their columns of dxBC.
  t.dxbc.resize(N, conv_dim);
  t.dzx.resize(N, P);
  t.dD_rows.resize(N, H);
  t.dA_rows.resize(N, H);
  t.ddt_rows.resize(N, H);
  if (N * H > 0) {
    heads_backward_kernel<<<blocks_for(N * H), kThreads, 0, s>>>(
        t.dy.data(), t.dv.data(), t.dg.data(), m.xbc.data(), m.dt.data(), m.dt_pre.data(), m.g.data(),
        p[D].value.data(), p[A_log].value.data(), N, int(H), int(V), conv_dim, P, d_inner + conv_dim, t.dxbc.data(),
        t.dzx.data(), t.dD_rows.data(), t.dA_rows.data(), t.ddt_rows.data());
    check_launch("heads_backward_kernel");
  }
  copy_cols(ctx, t.dk.data(), G * K, 0, t.dxbc.data(), conv_dim, d_inner, N, G * K);
  copy_cols(ctx, t.dq.data(), G * K, 0, t.dxbc.data(), conv_dim, d_inner + G * K, N, G * K);
  column_sum(ctx, t.dD_rows.data(), N, H, p[D].grad.data(), true);
  column_sum(ctx, t.dA_rows.data(), N, H, p[A_log].grad.data(), true);
  column_sum(ctx, t.ddt_rows.data(), N, H, p[dt_bias].grad.data(), true);
  // forward: xBC = SiLU(conv1d(xBC_raw)) (SiLU's backward in place on dxBC).
  silu_backward(ctx, m.xbc_pre, t.dxbc, t.dxbc);
  conv1d_backward(ctx, m.xbc_raw, B, p[conv_w].value, t.dxbc, p[conv_w].grad, p[conv_b].grad, t.dxbc_raw);
  // forward: lam = LevelWeights(dl).
  m.lam->backward(ctx, t.dlam, t.ddl);
  // forward: [z | xBC | dt_raw | dl] = u in_proj^T (dt_raw's columns were written above).
  copy_cols(ctx, t.dz.data(), d_inner, 0, t.dzx.data(), P, 0, N, d_inner);
  copy_cols(ctx, t.dxbc_raw.data(), conv_dim, 0, t.dzx.data(), P, d_inner, N, conv_dim);
  copy_cols(ctx, t.ddl.data(), H * m.L, 0, t.dzx.data(), P, d_inner + conv_dim + H, N, H * m.L);
  linear_backward(ctx, m.u, p[in_proj].value, t.dzx, p[in_proj].grad, du);
}

void Mamba2Mixer::share_temporaries(Mamba2Mixer& other) { impl_->t = other.impl_->t; }

void Mamba2Mixer::set_attention_precision(Precision p) { impl_->attention = p; }

Precision Mamba2Mixer::attention_precision() const { return impl_->attention; }

const DeviceMatrix& Mamba2Mixer::last_decay() const { return impl_->g; }

const DeviceMatrix& Mamba2Mixer::last_lambda() const { return impl_->lamv; }

}  // namespace loglinear::cuda::nn
