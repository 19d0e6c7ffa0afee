// The log-linear Mamba-2 mixer on the GPU (loglinear/cuda/nn/mamba2_mixer.hpp). Every block names
// the CPU line it mirrors (reference/loglinear/nn/mamba2_mixer.cpp). in_proj's output [z | xBC |
// dt_raw dl] is computed as three GEMMs (InProj), one per slice, so that each slice is a contiguous
// matrix, which is what the layers and the operator take, and z lands in the gated norm's cache
// directly; the per-head steps (dt, v = x dt, the D skip, their backward) are kernels that read the
// slices in place, with SiLU folded into the split of xBC and into its backward. Per-head
// parameter gradients are written as per-row partials [N, H] and summed over rows by column_sum
// (fixed order, no atomics). Why the layout matters: the LM step's profile of 2026-12-04
// (bench/RESULTS-gpu.md) found these kernels, not the operator, at half the step's kernel time.
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
#include "../core/warp.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {
enum P { in_proj, conv_w, conv_b, dt_bias, A_log, D, norm_w, out_proj };
constexpr const char* kNames[] = {"in_proj", "conv_w", "conv_b", "dt_bias", "A_log", "D", "norm_w", "out_proj"};

// dst[n, dc0 + j] = src[n, sc0 + j] for n < N, j < w: one column slice of a row-major matrix with
// ld_src columns into another with ld_dst columns. Only lambda's small slice dl (and its gradient)
// goes through here: in_proj's large slices are GEMM outputs of their own (InProj).
__global__ void copy_cols_kernel(const float* __restrict__ src, std::int64_t ld_src, std::int64_t sc0,
                                 float* __restrict__ dst, std::int64_t ld_dst, std::int64_t dc0, std::int64_t N,
                                 std::int64_t w) {
  LOGLINEAR_ROWS_COLS_LOOP(n, j, N, w) dst[n * ld_dst + dc0 + j] = src[n * ld_src + sc0 + j];
}

void copy_cols(Context& ctx, const float* src, Index ld_src, Index sc0, float* dst, Index ld_dst, Index dc0, Index N,
               Index w) {
  if (N * w == 0) return;
  copy_cols_kernel<<<grid_rows_cols(N, w), kThreads, 0, ctx.stream()>>>(src, ld_src, sc0, dst, ld_dst, dc0, N, w);
  check_launch("copy_cols_kernel");
}

// in_proj's output [z | xBC | dt_raw dl] computed as three GEMMs, one per row block of its weight
// [P, d_model] (rows are contiguous, so each block is a plain [rows, d_model] matrix), so that
// every slice lands in a contiguous matrix of its own and nothing is copied. The sums over
// d_model are those of one GEMM over all P rows; only du, a sum over the three blocks, adds in a
// different order (float rounding, within the CPU-twin tests' bounds).
struct InProj {
  Index rows[3];  // d_inner, conv_dim, H + H L
  void forward(Context& ctx, const DeviceMatrix& u, const DeviceMatrix& W, DeviceMatrix* out[3]) const {
    Index r0 = 0;
    for (int i = 0; i < 3; ++i) {
      out[i]->resize(u.rows(), rows[i]);
      gemm(ctx, false, true, u.rows(), rows[i], u.cols(), 1.f, u.data(), W.data() + r0 * W.cols(), 0.f, out[i]->data());
      r0 += rows[i];
    }
  }
  // dW[block] += dy_block^T u; du = sum over blocks of dy_block W[block].
  void backward(Context& ctx, const DeviceMatrix& u, const DeviceMatrix& W, const DeviceMatrix* dy[3], DeviceMatrix& dW,
                DeviceMatrix& du) const {
    du.resize(u.rows(), u.cols());
    Index r0 = 0;
    for (int i = 0; i < 3; ++i) {
      gemm(ctx, true, false, rows[i], u.cols(), u.rows(), 1.f, dy[i]->data(), u.data(), 1.f, dW.data() + r0 * W.cols());
      gemm(ctx, false, false, u.rows(), u.cols(), rows[i], 1.f, dy[i]->data(), W.data() + r0 * W.cols(),
           i == 0 ? 0.f : 1.f, du.data());
      r0 += rows[i];
    }
  }
};

// forward: dt = softplus(dt_raw + dt_bias), g = -exp(A_log) dt, per (n, h); dt_raw is column h of
// in_proj's last slice dtl [N, H + H L]. dt_pre is kept for the backward's softplus' = sigmoid.
__global__ void dt_forward_kernel(const float* __restrict__ dtl, std::int64_t ld, const float* __restrict__ bias,
                                  const float* __restrict__ alog, std::int64_t N, int H, float* __restrict__ dt_pre,
                                  float* __restrict__ dt, float* __restrict__ g) {
  LOGLINEAR_ROWS_COLS_LOOP(n, h, N, H) {
    const std::int64_t i = n * H + h;
    const float pre = dtl[n * ld + h] + bias[h];
    const float d = device::softplus(pre);
    dt_pre[i] = pre;
    dt[i] = d;
    g[i] = -expf(alog[h]) * d;  // the CPU's -exp(A_log) * dt, in that order
  }
}

// forward: xBC = SiLU(xBC_pre) (kept for the backward), then [x | Bm | Cm] = xBC; v = x dt per
// head (x's column c belongs to head c / V), k = Bm, q = Cm, each into its own contiguous matrix
// (the operator's [B,T,H,V] and [B,T,G,K] layouts). One pass instead of SiLU, then the split.
__global__ void silu_split_xbc_kernel(const float* __restrict__ pre, const float* __restrict__ dt, std::int64_t N,
                                      int conv_dim, int d_inner, int GK, int V, int H, float* __restrict__ xbc,
                                      float* __restrict__ v, float* __restrict__ k, float* __restrict__ q) {
  LOGLINEAR_ROWS_COLS_LOOP(n, c, N, conv_dim) {
    const std::int64_t i = n * conv_dim + c;
    const float val = device::silu(pre[i]);
    xbc[i] = val;
    if (c < d_inner)
      v[n * d_inner + c] = val * dt[n * H + c / V];
    else if (c < d_inner + GK)
      k[n * GK + (c - d_inner)] = val;
    else
      q[n * GK + (c - d_inner - GK)] = val;
  }
}

// forward: y = o + D x per head (the skip reads x, xBC's first d_inner columns, before the dt
// scaling), written straight into the gated norm's cache of its input.
__global__ void skip_forward_kernel(const float* __restrict__ o, const float* __restrict__ xbc,
                                    const float* __restrict__ Dh, std::int64_t N, int conv_dim, int d_inner, int V,
                                    float* __restrict__ y) {
  LOGLINEAR_ROWS_COLS_LOOP(n, c, N, d_inner) {
    y[n * d_inner + c] = o[n * d_inner + c] + Dh[c / V] * xbc[n * conv_dim + c];
  }
}

constexpr int kWarpsPerBlock = 8;

// Backward of the per-head steps, one warp per (n, h), its lanes across the head's V columns (so
// that a warp's loads are contiguous), the two dot products summed by lane, then across lanes:
//   y = o + D x        -> dx = D dy,          dD  += <dy, x>   (partial dD_rows[n, h])
//   v = x dt           -> dx += dv dt,        ddt  = <dv, x>
//   xBC = SiLU(pre)    -> dpre = dx SiLU'(pre) (SiLU's backward, folded in: dxbc is d xBC_pre)
//   g = -exp(A_log) dt -> ddt -= exp(A_log) dg, dA_log += dg g  (partial dA_rows[n, h])
//   dt = softplus(pre) -> ddt_raw = ddt sigmoid(pre); dt_bias's gradient is its column sum.
// dpre goes into dxbc [N, conv_dim] (first d_inner columns), ddt_raw both into ddt_rows [N, H]
// (for the column sum) and into column h of dtl's gradient ddtl [N, H + H L].
__global__ void heads_backward_kernel(const float* __restrict__ dy, const float* __restrict__ dv,
                                      const float* __restrict__ dg, const float* __restrict__ xbc,
                                      const float* __restrict__ xbc_pre, const float* __restrict__ dt,
                                      const float* __restrict__ dt_pre, const float* __restrict__ g,
                                      const float* __restrict__ Dh, const float* __restrict__ alog, std::int64_t N,
                                      int H, int V, std::int64_t conv_dim, std::int64_t ld_dtl,
                                      float* __restrict__ dxbc, float* __restrict__ ddtl,
                                      float* __restrict__ dD_rows, float* __restrict__ dA_rows,
                                      float* __restrict__ ddt_rows) {
  const std::int64_t i = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (i >= N * H) return;  // uniform across the warp: threadIdx.y is the warp's index
  const int lane = threadIdx.x;
  const std::int64_t n = i / H;
  const int h = int(i - n * H);
  const std::int64_t d_inner = std::int64_t(H) * V;
  const std::int64_t a = n * d_inner + std::int64_t(h) * V;   // dy, dv: [N, d_inner]
  const std::int64_t b = n * conv_dim + std::int64_t(h) * V;  // xbc, xbc_pre, dxbc: [N, conv_dim]
  const float Dv = Dh[h], dtv = dt[i];
  float dD = 0.f, dvx = 0.f;
  for (int j = lane; j < V; j += 32) {
    const float x = xbc[b + j], dyj = dy[a + j], dvj = dv[a + j];
    dxbc[b + j] = (Dv * dyj + dvj * dtv) * device::silu_grad(xbc_pre[b + j]);
    dD += dyj * x;
    dvx += dvj * x;
  }
  dD = device::warp_sum(dD);
  dvx = device::warp_sum(dvx);
  if (lane != 0) return;
  const float ddt = dvx - expf(alog[h]) * dg[i];
  const float ddt_raw = ddt * device::sigmoid(dt_pre[i]);
  dD_rows[i] = dD;
  dA_rows[i] = dg[i] * g[i];
  ddt_rows[i] = ddt_raw;
  ddtl[n * ld_dtl + h] = ddt_raw;
}

// Backward of k = Bm, q = Cm and the SiLU before them: d xBC_pre's last 2 G K columns are
// [dk | dq] SiLU'(xBC_pre).
__global__ void qk_backward_kernel(const float* __restrict__ dk, const float* __restrict__ dq,
                                   const float* __restrict__ xbc_pre, std::int64_t N, int conv_dim, int d_inner,
                                   int GK, float* __restrict__ dxbc) {
  LOGLINEAR_ROWS_COLS_LOOP(n, c, N, 2 * GK) {
    const float d = c < GK ? dk[n * GK + c] : dq[n * GK + (c - GK)];
    const std::int64_t i = n * conv_dim + d_inner + c;
    dxbc[i] = d * device::silu_grad(xbc_pre[i]);
  }
}

}  // namespace

struct Mamba2Mixer::Impl {
  // What a call needs only while it runs: in_proj's output and the slices that the gated norm and
  // lambda copy into caches of their own, y (likewise), and every backward gradient. Nothing here
  // lives from a forward to its backward, so mixers that run one after another on one stream can
  // share one set (the LM's blocks do: share_temporaries).
  struct Temporaries {
    DeviceMatrix dtl, dl;
    DeviceMatrix dyn, dy, dz, dq, dk, dv, dg, dlam, dxbc, dxbc_raw, ddl, ddtl, dD_rows, dA_rows, ddt_rows;
  };
  Index H = 0, L = 0, G = 0, K = 0, V = 0, d_inner = 0, conv_dim = 0, P = 0;
  InProj in{};  // in_proj's three row blocks: d_inner, conv_dim, H + H L
  Precision attention = Precision::fp32;  // the operator's storage (set_attention_precision)
  std::vector<DeviceParam> p;  // P order
  std::unique_ptr<lambda::LevelWeights> lam;
  // Cache of the last forward, [N, features] with N = B*T (u is a copy, as the CPU's u_). The gated
  // norm's cache holds y and z (norm.x, norm.z), written there by the kernels that compute them.
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
  m.in = InProj{{m.d_inner, m.conv_dim, m.H + m.H * m.L}};
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
  const Index H = m.H, G = m.G, K = m.K, V = m.V, d_inner = m.d_inner, conv_dim = m.conv_dim;
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
  // [z | xBC | dt_raw dl] = in_proj(u), each slice into its own matrix; dl, lambda's input, out of
  // the last one.
  DeviceMatrix* slices[3] = {&m.norm.z, &m.xbc_raw, &t.dtl};
  m.in.forward(ctx, m.u, m.p[in_proj].value, slices);
  const Index ld_dtl = H + H * m.L;
  t.dl.resize(N, H * m.L);
  copy_cols(ctx, t.dtl.data(), ld_dtl, H, t.dl.data(), H * m.L, 0, N, H * m.L);
  conv1d_forward(ctx, m.xbc_raw, B, m.p[conv_w].value, m.p[conv_b].value, m.xbc_pre);
  // dt = softplus(dt_raw + dt_bias), g = -exp(A_log) dt.
  m.dt_pre.resize(N, H);
  m.dt.resize(N, H);
  m.g.resize(N, H);
  if (N * H > 0) {
    dt_forward_kernel<<<grid_rows_cols(N, H), kThreads, 0, s>>>(t.dtl.data(), ld_dtl, m.p[dt_bias].value.data(),
                                                                m.p[A_log].value.data(), N, int(H), m.dt_pre.data(),
                                                                m.dt.data(), m.g.data());
    check_launch("dt_forward_kernel");
  }
  // xBC = SiLU(conv1d(xBC_raw)); [x | Bm | Cm] = xBC; v = x dt per head; k = Bm, q = Cm.
  m.xbc.resize(N, conv_dim);
  m.v.resize(N, d_inner);
  m.k.resize(N, G * K);
  m.q.resize(N, G * K);
  if (N * conv_dim > 0) {
    silu_split_xbc_kernel<<<grid_rows_cols(N, conv_dim), kThreads, 0, s>>>(
        m.xbc_pre.data(), m.dt.data(), N, int(conv_dim), int(d_inner), int(G * K), int(V), int(H), m.xbc.data(),
        m.v.data(), m.k.data(), m.q.data());
    check_launch("silu_split_xbc_kernel");
  }
  m.lam->forward(ctx, t.dl, m.lamv);
  // o = LogLinearAttention(q = Cm, k = Bm, v, g, lam), G groups of q and k.
  m.o.resize(N, d_inner);
  const AttentionDims dims = m.dims();
  const ChunkedOptions opts = m.opts(cfg_.chunk);
  attention_forward(ctx, m.attention, {m.q.data(), m.k.data(), m.v.data(), m.g.data(), m.lamv.data()}, dims, opts,
                    m.o.data());
  // y = o + D x into the gated norm's cache of its input; gated norm per group with z (already in
  // the cache, so the norm copies neither); out_proj.
  m.norm.x.resize(N, d_inner);
  if (N * d_inner > 0) {
    skip_forward_kernel<<<grid_rows_cols(N, d_inner), kThreads, 0, s>>>(m.o.data(), m.xbc.data(), m.p[D].value.data(),
                                                                        N, int(conv_dim), int(d_inner), int(V),
                                                                        m.norm.x.data());
    check_launch("skip_forward_kernel");
  }
  gated_rmsnorm_forward(ctx, m.norm.x, m.norm.z, m.p[norm_w].value, m.norm, m.yn, G);
  linear_forward(ctx, m.yn, m.p[out_proj].value, out);
  m.pending = true;
}

void Mamba2Mixer::backward(Context& ctx, const DeviceMatrix& dout, DeviceMatrix& du) {
  Impl& m = *impl_;
  if (!m.pending) throw std::logic_error("cuda::nn::Mamba2Mixer::backward: expected a forward() first");
  const Index H = m.H, G = m.G, K = m.K, V = m.V, d_inner = m.d_inner, conv_dim = m.conv_dim;
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
  // forward: y = o + D x, v = x dt, xBC = SiLU(xBC_pre), g = -exp(A_log) dt, dt = softplus(dt_raw +
  // dt_bias): d xBC_pre's x columns, ddt_raw and the per-row partials of dD, dA_log, ddt_bias in
  // one kernel; then k = Bm and q = Cm send dk, dq (through SiLU) to their columns of d xBC_pre.
  const Index ld_dtl = H + H * m.L;
  t.dxbc.resize(N, conv_dim);
  t.ddtl.resize(N, ld_dtl);
  t.dD_rows.resize(N, H);
  t.dA_rows.resize(N, H);
  t.ddt_rows.resize(N, H);
  if (N * H > 0) {
    const auto blocks = unsigned((N * H + kWarpsPerBlock - 1) / kWarpsPerBlock);
    heads_backward_kernel<<<blocks, dim3(32, kWarpsPerBlock), 0, s>>>(
        t.dy.data(), t.dv.data(), t.dg.data(), m.xbc.data(), m.xbc_pre.data(), m.dt.data(), m.dt_pre.data(),
        m.g.data(), p[D].value.data(), p[A_log].value.data(), N, int(H), int(V), conv_dim, ld_dtl, t.dxbc.data(),
        t.ddtl.data(), t.dD_rows.data(), t.dA_rows.data(), t.ddt_rows.data());
    check_launch("heads_backward_kernel");
  }
  if (N * G * K > 0) {
    qk_backward_kernel<<<grid_rows_cols(N, 2 * G * K), kThreads, 0, s>>>(
        t.dk.data(), t.dq.data(), m.xbc_pre.data(), N, int(conv_dim), int(d_inner), int(G * K), t.dxbc.data());
    check_launch("qk_backward_kernel");
  }
  column_sum(ctx, t.dD_rows.data(), N, H, p[D].grad.data(), true);
  column_sum(ctx, t.dA_rows.data(), N, H, p[A_log].grad.data(), true);
  column_sum(ctx, t.ddt_rows.data(), N, H, p[dt_bias].grad.data(), true);
  // forward: xBC_pre = conv1d(xBC_raw).
  conv1d_backward(ctx, m.xbc_raw, B, p[conv_w].value, t.dxbc, p[conv_w].grad, p[conv_b].grad, t.dxbc_raw);
  // forward: lam = LevelWeights(dl), dl = dtl's last H L columns.
  m.lam->backward(ctx, t.dlam, t.ddl);
  copy_cols(ctx, t.ddl.data(), H * m.L, 0, t.ddtl.data(), ld_dtl, H, N, H * m.L);
  // forward: [z | xBC_raw | dtl] = u in_proj^T, three row blocks.
  const DeviceMatrix* dslices[3] = {&t.dz, &t.dxbc_raw, &t.ddtl};
  m.in.backward(ctx, m.u, p[in_proj].value, dslices, p[in_proj].grad, du);
}

void Mamba2Mixer::share_temporaries(Mamba2Mixer& other) { impl_->t = other.impl_->t; }

void Mamba2Mixer::set_attention_precision(Precision p) { impl_->attention = p; }

Precision Mamba2Mixer::attention_precision() const { return impl_->attention; }

const DeviceMatrix& Mamba2Mixer::last_decay() const { return impl_->g; }

const DeviceMatrix& Mamba2Mixer::last_lambda() const { return impl_->lamv; }

}  // namespace loglinear::cuda::nn
