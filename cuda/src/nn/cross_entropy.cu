// Masked softmax cross-entropy on the GPU (loglinear/cuda/nn/cross_entropy.hpp).
#include <loglinear/cuda/nn/cross_entropy.hpp>

#include "../core/launch.cuh"
#include "../core/warp.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda::nn {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kSumThreads = 256;

// Per row: loss_n = log sum exp(l - max) + max - l[target], right_n = (argmax == target), and the
// gradient row (softmax - onehot) / scored. Unscored rows get zeros.
__global__ void cross_entropy_rows(const float* __restrict__ logits, const std::int32_t* __restrict__ targets,
                                   std::int64_t N, int V, float scored, float* __restrict__ dlogits,
                                   float* __restrict__ loss, int* __restrict__ right) {
  const std::int64_t n = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (n >= N) return;
  const int lane = threadIdx.x;
  const float* l = logits + n * V;
  const int tgt = targets[n];
  // right[n]: 1 a hit, 0 a miss or unscored, -1 a target the caller's count did not include
  // (out of range): the total below refuses the call rather than reading past the row.
  if (tgt >= V) {
    if (lane == 0) {
      loss[n] = 0.f;
      right[n] = -1;
    }
    return;
  }
  if (tgt < 0) {
    if (dlogits)
      for (int c = lane; c < V; c += 32) dlogits[n * V + c] = 0.f;
    if (lane == 0) {
      loss[n] = 0.f;
      right[n] = 0;
    }
    return;
  }
  // Max and the first index attaining it (as Eigen's maxCoeff).
  float mx = -INFINITY;
  int arg = V;
  for (int c = lane; c < V; c += 32)
    if (l[c] > mx) {
      mx = l[c];
      arg = c;
    }
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, mx, o);
    const int oa = __shfl_xor_sync(0xffffffffu, arg, o);
    if (om > mx || (om == mx && oa < arg)) {
      mx = om;
      arg = oa;
    }
  }
  float s = 0.f;
  for (int c = lane; c < V; c += 32) s += expf(l[c] - mx);
  const float sum = device::warp_sum(s);
  if (dlogits) {
    const float denom = sum * scored, inv_scored = 1.f / scored;  // e / (sum * scored), as the CPU twin
    for (int c = lane; c < V; c += 32)
      dlogits[n * V + c] = expf(l[c] - mx) / denom - (c == tgt ? inv_scored : 0.f);
  }
  if (lane == 0) {
    loss[n] = logf(sum) + mx - l[tgt];
    right[n] = arg == tgt ? 1 : 0;
  }
}

// One block: out[0] = sum of loss (double), out[1] = hits, out[2] = scored targets, out[3] =
// targets out of range; each thread over a fixed stride of rows, then a fixed tree.
__global__ void cross_entropy_total(const float* __restrict__ loss, const int* __restrict__ right,
                                    const std::int32_t* __restrict__ targets, std::int64_t N, int V,
                                    double* __restrict__ out) {
  __shared__ double acc[4][kSumThreads];
  double a[4] = {0, 0, 0, 0};
  for (std::int64_t n = threadIdx.x; n < N; n += kSumThreads) {
    a[0] += double(loss[n]);
    a[1] += right[n] > 0;
    a[2] += targets[n] >= 0 && targets[n] < V;
    a[3] += targets[n] >= V;
  }
  for (int i = 0; i < 4; ++i) acc[i][threadIdx.x] = a[i];
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s)
      for (int i = 0; i < 4; ++i) acc[i][threadIdx.x] += acc[i][threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0)
    for (int i = 0; i < 4; ++i) out[i] = acc[i][0];
}

}  // namespace

double cross_entropy(Context& ctx, const DeviceMatrix& logits, const std::int32_t* targets, Index scored,
                     DeviceMatrix* dlogits, Index* correct) {
  const Index N = logits.rows(), V = logits.cols();
  if (scored < 0 || scored > N)
    throw std::invalid_argument("scored: expected 0 <= scored <= N = " + std::to_string(N) + ", got " +
                                std::to_string(scored));
  if (N > 0 && V < 1) throw std::invalid_argument("logits: expected vocab >= 1 columns, got 0");
  if (N > 0 && !targets) throw std::invalid_argument("targets: expected a device pointer, got nullptr");
  if (dlogits) dlogits->resize(N, V);
  if (correct) *correct = 0;
  if (N == 0) return 0;
  // Per-row loss and hit in scratch: [N floats | N ints | 4 doubles (8-byte aligned)].
  float* scratch = ctx.scratch(std::size_t(2 * N + 2 + 8));
  float* loss = scratch;
  int* right = reinterpret_cast<int*>(scratch + N);
  double* total = reinterpret_cast<double*>(scratch + ((2 * N + 3) / 2) * 2);  // 8-byte aligned
  const unsigned blocks = unsigned((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  cross_entropy_rows<<<blocks, dim3(32, kWarpsPerBlock), 0, ctx.stream()>>>(
      logits.data(), targets, N, int(V), float(scored), dlogits ? dlogits->data() : nullptr, loss, right);
  check_launch("cross_entropy_rows");
  cross_entropy_total<<<1, kSumThreads, 0, ctx.stream()>>>(loss, right, targets, N, int(V), total);
  check_launch("cross_entropy_total");
  double host[4];
  LOGLINEAR_CUDA_CHECK(cudaMemcpyAsync(host, total, sizeof host, cudaMemcpyDeviceToHost, ctx.stream()));
  ctx.synchronize();
  if (host[3] > 0)
    throw std::invalid_argument("targets: expected -1 or ids in [0, " + std::to_string(V) + "), got " +
                                std::to_string(Index(host[3])) + " out of range");
  if (Index(host[2]) != scored)
    throw std::invalid_argument("scored: expected the number of targets >= 0, " + std::to_string(Index(host[2])) +
                                ", got " + std::to_string(scored));
  if (correct) *correct = Index(host[1]);
  return scored ? host[0] / double(scored) : 0.0;
}

}  // namespace loglinear::cuda::nn
