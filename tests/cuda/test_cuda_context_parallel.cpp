// Context parallelism on the GPU (issue 17 item 3): cp_forward / cp_backward with every segment on
// the CUDA kernels (cuda::CudaChunkedEngine), over one rank here: SelfCommunicator and, where
// NCCL is built, an NCCL group of one GPU. The reference is the CPU chunked form in float on the
// whole sequence (tests/support/context_parallel_check.hpp). Several ranks over MPI on one GPU and
// over NCCL on several GPUs are tests/mpi/mpi_cuda_context_parallel.cpp. Bound: 1e-4 relative,
// the CUDA float32 kernels' bound against the CPU (tests/cuda/test_cuda_chunked.cpp).
#include <loglinear/cuda/context_parallel.hpp>
#include <loglinear/cuda/device.hpp>
#ifdef LOGLINEAR_WITH_NCCL
#include <loglinear/nccl/communicator.hpp>
#endif

#include "../support/context_parallel_check.hpp"
#include "../support/require_gpu.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

using namespace loglinear;
using namespace loglinear::test;

namespace {

// Odd T, T < C, G > 1, K != V, a carried state aligned to C or not (a macro: GENERATE belongs in
// the test case's body).
#define GPU_CP_CASE()                                                                                       \
  GENERATE(CpCase{{1, 1, 1, 1, 2, 2}, 64, 0, 31}, CpCase{{2, 37, 2, 1, 5, 3}, 8, 0, 32},                   \
           CpCase{{1, 100, 4, 2, 4, 6}, 16, 0, 33}, CpCase{{1, 301, 2, 1, 6, 4}, 32, 27, 34},               \
           CpCase{{2, 45, 2, 2, 3, 5}, 8, 64, 35}, CpCase{{1, 1000, 2, 1, 16, 8}, 64, 300, 36})

void check_all(const std::vector<Comparison>& results) {
  for (const Comparison& r : results) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-4);
  }
}

}  // namespace

TEST_CASE("cuda: context parallelism with the CUDA engine on one rank equals the CPU chunked call",
          "[cuda][gpu][context_parallel]") {
  REQUIRE_GPU();
  const CpCase c = GPU_CP_CASE();
  CAPTURE(describe(c), cuda::device_name());
  const SelfCommunicator self;
  const cuda::CudaChunkedEngine engine;
  check_all(check_context_parallel<float>(self, c, &engine));
}

TEST_CASE("cuda: context parallelism over an NCCL group of one GPU equals the CPU chunked call",
          "[cuda][gpu][context_parallel][nccl]") {
#ifndef LOGLINEAR_WITH_NCCL
  SKIP("this build has no NCCL (nccl/ is built when CMake finds NCCL beside the CUDA toolkit)");
#else
  REQUIRE_GPU();
  const CpCase c = GPU_CP_CASE();
  CAPTURE(describe(c), cuda::device_name());
  const auto comm = nccl::NcclCommunicator::single(0);
  const cuda::CudaChunkedEngine engine;
  check_all(check_context_parallel<float>(*comm, c, &engine));
#endif
}
