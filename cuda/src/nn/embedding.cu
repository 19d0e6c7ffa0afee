// Token embedding on the GPU (loglinear/cuda/nn/embedding.hpp).
#include <loglinear/cuda/nn/embedding.hpp>

#include "../core/launch.cuh"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::cuda::nn {

// Pinned staging: [ids N | offsets vocab+1 | positions N | targets N (if given)], one copy; `copied` marks when the
// stream has read it, so the next set() waits before overwriting.
struct DeviceTokens::Impl {
  std::int32_t* host = nullptr;
  std::size_t host_capacity = 0;
  DeviceBuffer<std::int32_t> device;
  cudaEvent_t copied = nullptr;
  ~Impl() {
    if (host) cudaFreeHost(host);
    if (copied) cudaEventDestroy(copied);
  }
};

DeviceTokens::DeviceTokens() : impl_(std::make_unique<Impl>()) {}
DeviceTokens::~DeviceTokens() = default;
DeviceTokens::DeviceTokens(DeviceTokens&&) noexcept = default;
DeviceTokens& DeviceTokens::operator=(DeviceTokens&&) noexcept = default;

void DeviceTokens::set(const std::int32_t* tokens, Index N, Index vocab, cudaStream_t stream,
                       const std::int32_t* targets) {
  constexpr Index kMaxN = 2147483647;  // positions and offsets are int32 on the device
  if (vocab < 1 || vocab > kMaxN) throw std::invalid_argument("vocab: expected 1 <= vocab < 2^31, got " + std::to_string(vocab));
  if (N < 0 || N > kMaxN) throw std::invalid_argument("N: expected 0 <= N < 2^31, got " + std::to_string(N));
  if (N > 0 && !tokens) throw std::invalid_argument("tokens: expected a host pointer, got nullptr");
  for (Index n = 0; n < N; ++n)
    if (tokens[n] < 0 || tokens[n] >= vocab)
      throw std::invalid_argument("tokens: expected ids in [0, " + std::to_string(vocab) + "), got " +
                                  std::to_string(tokens[n]) + " at " + std::to_string(n));
  Index scored = 0;
  if (targets)
    for (Index n = 0; n < N; ++n) {
      if (targets[n] < -1 || targets[n] >= vocab)
        throw std::invalid_argument("targets: expected -1 or ids in [0, " + std::to_string(vocab) + "), got " +
                                    std::to_string(targets[n]) + " at " + std::to_string(n));
      scored += targets[n] >= 0;
    }
  Impl& m = *impl_;
  const std::size_t need = std::size_t((targets ? 3 : 2) * N + vocab + 1);
  if (m.copied) LOGLINEAR_CUDA_CHECK(cudaEventSynchronize(m.copied));  // the last copy has read the staging
  if (need > m.host_capacity) {
    if (m.host) LOGLINEAR_CUDA_CHECK(cudaFreeHost(m.host));
    m.host = nullptr;
    m.host_capacity = 0;
    LOGLINEAR_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&m.host), need * sizeof(std::int32_t)));
    m.host_capacity = need;
  }
  if (!m.copied) LOGLINEAR_CUDA_CHECK(cudaEventCreateWithFlags(&m.copied, cudaEventDisableTiming));
  std::int32_t* ids = m.host;
  std::int32_t* offsets = ids + N;
  std::int32_t* positions = offsets + vocab + 1;
  std::copy(tokens, tokens + N, ids);
  // Counting sort of the positions by id (stable: increasing n within an id).
  std::fill(offsets, offsets + vocab + 1, 0);
  for (Index n = 0; n < N; ++n) ++offsets[tokens[n] + 1];
  for (Index v = 0; v < vocab; ++v) offsets[v + 1] += offsets[v];
  std::vector<std::int32_t> next(offsets, offsets + vocab);
  for (Index n = 0; n < N; ++n) positions[next[size_t(tokens[n])]++] = std::int32_t(n);
  if (targets) std::copy(targets, targets + N, positions + N);
  m.device.resize(need);
  LOGLINEAR_CUDA_CHECK(cudaMemcpyAsync(m.device.data(), m.host, need * sizeof(std::int32_t),
                                       cudaMemcpyHostToDevice, stream));
  LOGLINEAR_CUDA_CHECK(cudaEventRecord(m.copied, stream));
  N_ = N;
  vocab_ = vocab;
  scored_ = scored;
  has_targets_ = targets != nullptr;
}

const std::int32_t* DeviceTokens::ids() const { return impl_->device.data(); }
const std::int32_t* DeviceTokens::offsets() const { return impl_->device.data() + N_; }
const std::int32_t* DeviceTokens::positions() const { return impl_->device.data() + N_ + vocab_ + 1; }
const std::int32_t* DeviceTokens::targets() const {
  return has_targets_ ? impl_->device.data() + 2 * N_ + vocab_ + 1 : nullptr;
}

namespace {

__global__ void embedding_gather(const std::int32_t* __restrict__ ids, const float* __restrict__ table,
                                 std::int64_t N, std::int64_t d, float* __restrict__ x) {
  LOGLINEAR_GRID_LOOP(i, N * d) x[i] = table[std::int64_t(ids[i / d]) * d + i % d];
}

// One block per id (grid-stride over ids), threads across the columns: dtable[v] += the rows of dx
// at v's positions, in increasing position order.
__global__ void embedding_gather_sum(const std::int32_t* __restrict__ offsets, const std::int32_t* __restrict__ positions,
                                     const float* __restrict__ dx, std::int64_t vocab, std::int64_t d,
                                     float* __restrict__ dtable) {
  for (std::int64_t v = blockIdx.x; v < vocab; v += gridDim.x) {
    const int begin = offsets[v], end = offsets[v + 1];
    if (begin == end) continue;
    for (std::int64_t c = threadIdx.x; c < d; c += blockDim.x) {
      float s = 0.f;
      for (int p = begin; p < end; ++p) s += dx[std::int64_t(positions[p]) * d + c];
      dtable[v * d + c] += s;
    }
  }
}

}  // namespace

void embedding_forward(Context& ctx, const DeviceTokens& tokens, const DeviceMatrix& table, DeviceMatrix& x) {
  if (table.rows() != tokens.vocab())
    throw std::invalid_argument("table: expected [vocab, d] with vocab = tokens.vocab() = " +
                                std::to_string(tokens.vocab()) + ", got " + std::to_string(table.rows()) + " rows");
  x.resize(tokens.size(), table.cols());
  embedding_gather<<<blocks_for(x.size()), kThreads, 0, ctx.stream()>>>(tokens.ids(), table.data(), tokens.size(),
                                                                          table.cols(), x.data());
  check_launch("embedding_gather");
}

void embedding_backward(Context& ctx, const DeviceTokens& tokens, const DeviceMatrix& dx, DeviceMatrix& dtable) {
  if (dtable.rows() != tokens.vocab())
    throw std::invalid_argument("dtable: expected [vocab, d] with vocab = " + std::to_string(tokens.vocab()) +
                                ", got " + std::to_string(dtable.rows()) + " rows");
  if (dx.rows() != tokens.size() || dx.cols() != dtable.cols())
    throw std::invalid_argument("dx: expected [N, d] = [" + std::to_string(tokens.size()) + ", " +
                                std::to_string(dtable.cols()) + "], got [" + std::to_string(dx.rows()) + ", " +
                                std::to_string(dx.cols()) + "]");
  const unsigned threads = unsigned(std::min<Index>(256, std::max<Index>(32, dtable.cols())));
  embedding_gather_sum<<<blocks_for(tokens.vocab(), 1), threads, 0, ctx.stream()>>>(
      tokens.offsets(), tokens.positions(), dx.data(), tokens.vocab(), dtable.cols(), dtable.data());
  check_launch("embedding_gather_sum");
}

}  // namespace loglinear::cuda::nn
