// Layout of the device workspace (declared and described in workspace.cuh): one pass over the
// parts, each rounded up to 64 floats (256 bytes) so that every part is aligned as WMMA stores
// need. O(1); sibling: checks.cu, which validates the sizes the layout is built from.
#include "workspace.cuh"

#include <stdexcept>
#include <string>

namespace loglinear::cuda {

namespace {
// The parts are products of checked sizes that can still exceed 64 bits on the device API
// (T up to 2^30, B*H up to 65535, K and V up to 512, C = 1): refused, naming the sizes.
[[noreturn]] void too_large(const ChunkedSizes& s) {
  throw std::invalid_argument("dims: expected sizes whose workspace fits in 64-bit byte counts, got B = " +
                              std::to_string(s.B) + ", T = " + std::to_string(s.T) + ", H = " + std::to_string(s.H) +
                              ", K = " + std::to_string(s.K) + ", V = " + std::to_string(s.V) +
                              ", C = " + std::to_string(s.C));
}
}  // namespace

WorkspaceLayout::WorkspaceLayout(const ChunkedSizes& s, Precision precision_, bool backward_)
    : backward(backward_), varlen(s.varlen), precision(precision_) {
  auto times = [&s](std::size_t a, std::size_t b) {
    std::size_t out = 0;
    if (__builtin_mul_overflow(a, b, &out)) too_large(s);
    return out;
  };
  auto take = [&](std::size_t n) {  // the part's offset; the next part starts 256 bytes aligned
    const std::size_t at = total;
    if (__builtin_add_overflow(total, times((n + 63) / 64, 64), &total)) too_large(s);
    return at;
  };
  const std::size_t streams = std::size_t(s.B) * s.H;
  const std::size_t kv = times(times(streams * s.N, s.K), s.V);
  // Per-token arrays of the caller's shape: B T rows, or the packed total.
  const std::size_t nq = std::size_t(s.tokens) * s.G * s.K, nv = std::size_t(s.tokens) * s.H * s.V;
  gamma = take(streams * s.T);
  U = take(kv);
  Hin = take(times(std::size_t(s.E), kv));
  if (backward) dU = take(kv);
  if (precision == Precision::bf16) {
    if (!backward) o32 = take(nv);
    if (backward) { dq32 = take(nq); dk32 = take(nq); dv32 = take(nv); }
  }
  // The carried state's terms (chunked_state.cu): small beside Hin, so every dense call has them
  // and the workspace size does not depend on whether a state is passed. A packed forward may
  // return final states (the decay sums, streams x T floats: 2 C / (K V) of U); packed calls carry
  // no initial state and return no state gradient, and with many short sequences S_work would
  // outgrow everything else: no backward part for them.
  if (!varlen || !backward) {
    Gpre = take(streams * s.T);
    Gsuf = take(streams * s.T);
  }
  if (!varlen) {
    if (backward) {
      S_work = take(times(times(streams * std::size_t(s.Lf), s.K), s.V));
      dG_last = take(streams);
    }
  }
  if (varlen) cu = take(2 * (std::size_t(s.B) + 1));  // int64 offsets, two floats each
  times(total, sizeof(float));  // bytes() must not wrap either
}

template <class In>
ChunkedParams<In> WorkspaceLayout::params(const ChunkedSizes& s, void* base) const {
  float* ws = static_cast<float*>(base);
  ChunkedParams<In> p{};
  static_cast<ChunkedSizes&>(p) = s;
  p.gamma = ws + gamma; p.U = ws + U; p.Hin = ws + Hin;
  if (backward) p.dU = ws + dU;
  if (!varlen || !backward) { p.Gpre = ws + Gpre; p.Gsuf = ws + Gsuf; }
  if (!varlen && backward) { p.S_final = ws + S_work; p.dG_last = ws + dG_last; }
  if (varlen) p.cu = reinterpret_cast<const long long*>(ws + cu);
  if (precision == Precision::bf16) {
    if (backward) { p.dq = ws + dq32; p.dk = ws + dk32; p.dv = ws + dv32; }
    else p.o = ws + o32;
  }
  return p;
}

template ChunkedParams<float> WorkspaceLayout::params<float>(const ChunkedSizes&, void*) const;
template ChunkedParams<__nv_bfloat16> WorkspaceLayout::params<__nv_bfloat16>(const ChunkedSizes&, void*) const;

}  // namespace loglinear::cuda
