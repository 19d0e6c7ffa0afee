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
                                   std::int64_t N, int V, float inv_scored, float* __restrict__ dlogits,
                                   float* __restrict__ loss, int* __restrict__ right) {
  const std::int64_t n = std::int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (n >= N) return;
  const int lane = threadIdx.x;
  const float* l = logits + n * V;
  const int tgt = targets[n];
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
    const float scale = 1.f / (sum / inv_scored);  // e / (sum * scored), as the CPU twin
    for (int c = lane; c < V; c += 32)
      dlogits[n * V + c] = expf(l[c] - mx) * scale - (c == tgt ? inv_scored : 0.f);
  }
  if (lane == 0) {
    loss[n] = logf(sum) + mx - l[tgt];
    right[n] = arg == tgt;
  }
}

// One block: out[0] = sum of loss (double), out[1] = sum of right, each thread over a fixed stride
// of rows, then a fixed tree.
__global__ void cross_entropy_total(const float* __restrict__ loss, const int* __restrict__ right, std::int64_t N,
                                    double* __restrict__ out) {
  __shared__ double ls[kSumThreads];
  __shared__ double rs[kSumThreads];
  double a = 0, b = 0;
  for (std::int64_t n = threadIdx.x; n < N; n += kSumThreads) {
    a += double(loss[n]);
    b += double(right[n]);
  }
  ls[threadIdx.x] = a;
  rs[threadIdx.x] = b;
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) {
      ls[threadIdx.x] += ls[threadIdx.x + s];
      rs[threadIdx.x] += rs[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out[0] = ls[0];
    out[1] = rs[0];
  }
}

}  // namespace

double cross_entropy(Context& ctx, const DeviceMatrix& logits, const std::int32_t* targets, Index scored,
                     DeviceMatrix* dlogits, Index* correct) {
  const Index N = logits.rows(), V = logits.cols();
  if (scored < 0 || scored > N)
    throw std::invalid_argument("scored: expected 0 <= scored <= N = " + std::to_string(N) + ", got " +
                                std::to_string(scored));
  if (dlogits) dlogits->resize(N, V);
  if (correct) *correct = 0;
  if (N == 0) return 0;
  // Per-row loss and hit in scratch: [N floats | N ints | 2 doubles (aligned)].
  float* scratch = ctx.scratch(std::size_t(2 * N + 4 + 2));
  float* loss = scratch;
  int* right = reinterpret_cast<int*>(scratch + N);
  double* total = reinterpret_cast<double*>(scratch + ((2 * N + 3) / 2) * 2);  // 8-byte aligned
  const unsigned blocks = unsigned((N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  cross_entropy_rows<<<blocks, dim3(32, kWarpsPerBlock), 0, ctx.stream()>>>(
      logits.data(), targets, N, int(V), scored ? 1.f / float(scored) : 0.f, dlogits ? dlogits->data() : nullptr,
      loss, right);
  check_launch("cross_entropy_rows");
  cross_entropy_total<<<1, kSumThreads, 0, ctx.stream()>>>(loss, right, N, total);
  check_launch("cross_entropy_total");
  double host[2];
  LOGLINEAR_CUDA_CHECK(cudaMemcpyAsync(host, total, sizeof host, cudaMemcpyDeviceToHost, ctx.stream()));
  ctx.synchronize();
  if (correct) *correct = Index(host[1]);
  return scored ? host[0] / double(scored) : 0.0;
}

}  // namespace loglinear::cuda::nn
