// An out-of-tree program using the installed library: prints the levels of T = 1000.
#include <loglinear/attention/chunked.hpp>
#include <loglinear/core/fenwick.hpp>

#include <cstdio>

int main() {
  using namespace loglinear;
  Tensor<float, 4> q({1, 5, 1, 2}), k({1, 5, 1, 2}), v({1, 5, 1, 2}), lam({1, 5, 1, 4}), o({1, 5, 1, 2});
  Tensor<float, 3> g({1, 5, 1});
  chunked_forward<float>({q, k, v, g, lam}, {4}, o);
  std::printf("consumer: num_levels(1000) = %d\n", num_levels(1000));
  return num_levels(1000) == 11 ? 0 : 1;
}
