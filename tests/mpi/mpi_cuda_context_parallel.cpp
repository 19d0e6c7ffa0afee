// Context parallelism on the GPU over several ranks (issue 17 item 3), run by mpirun with R
// processes (tests/mpi/CMakeLists.txt: R = 1, 2, 3, 4):
// - every rank's segment on the CUDA kernels (cuda::CudaChunkedEngine), the all-gather over MPI:
//   R processes may share one GPU, so this runs on any GPU machine;
// - the same over NCCL (one rank per GPU, the group id sent by MPI_Bcast) where the build has NCCL
//   and the machine has at least R GPUs, else it says why it is skipped.
// Compared with the CPU chunked call in float on the whole sequence (context_parallel_check.hpp),
// bound 1e-4 relative (the CUDA float32 kernels' bound). Exit status 0 iff every case held on every
// rank, 77 (CTest: skipped) without a GPU.
#include <loglinear/cuda/context_parallel.hpp>
#include <loglinear/cuda/device.hpp>
#include <loglinear/mpi/communicator.hpp>
#ifdef LOGLINEAR_WITH_NCCL
#include <loglinear/nccl/communicator.hpp>
#endif

#include "../support/context_parallel_check.hpp"

#include <cuda_runtime_api.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <string>

using namespace loglinear;
using namespace loglinear::test;

namespace {

bool run_case(const Communicator& comm, const char* transport, const CpCase& c) {
  const cuda::CudaChunkedEngine engine;
  double worst = 0;
  std::string what = "-";
  try {
    for (const Comparison& r : check_context_parallel<float>(comm, c, &engine)) {
      if (!(r.max_rel <= worst)) {
        worst = r.max_rel;
        what = r.report();
      }
    }
  } catch (const std::exception& e) {
    worst = INFINITY;
    what = std::string("threw: ") + e.what();
  }
  double all = 0;
  MPI_Allreduce(&worst, &all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (!(worst <= 1e-4)) std::printf("rank %d FAIL %s %s: %s\n", comm.rank(), transport, describe(c).c_str(), what.c_str());
  if (comm.rank() == 0)
    std::printf("%s R=%d %-5s %s: worst relative error over every rank %.3g (bound 1e-4)\n", all <= 1e-4 ? "ok  " : "FAIL",
                comm.size(), transport, describe(c).c_str(), all);
  return all <= 1e-4;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int failures = 0, status = 0;
  {
    const mpi::MpiCommunicator comm;
    int have = cuda::device_available() ? 1 : 0, all_have = 0;
    MPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_have) {
      if (comm.rank() == 0) std::printf("skipped: no CUDA device (the GPU backend is compiled but cannot run here)\n");
      status = 77;
    } else {
      const CpCase cases[] = {
          {{1, 1, 1, 1, 2, 2}, 64, 0, 41},   {{2, 37, 2, 1, 5, 3}, 8, 0, 42},    {{1, 100, 4, 2, 4, 6}, 16, 0, 43},
          {{2, 129, 3, 3, 3, 2}, 4, 0, 44},  {{1, 301, 2, 1, 6, 4}, 32, 27, 45}, {{2, 45, 2, 2, 3, 5}, 8, 64, 46},
          {{1, 1000, 2, 1, 16, 8}, 64, 300, 47},
      };
      for (const CpCase& c : cases) failures += !run_case(comm, "mpi", c);
#ifdef LOGLINEAR_WITH_NCCL
      int devices = 0;
      cudaGetDeviceCount(&devices);
      int fewest = 0;
      MPI_Allreduce(&devices, &fewest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
      if (fewest >= comm.size()) {
        ncclUniqueId id{};
        if (comm.rank() == 0) id = nccl::NcclCommunicator::unique_id();
        MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
        const nccl::NcclCommunicator group(comm.rank(), comm.size(), id, comm.rank());
        for (const CpCase& c : cases) failures += !run_case(group, "nccl", c);
      } else if (comm.rank() == 0) {
        std::printf("skipped NCCL with %d ranks: %d GPU(s) here, NCCL takes one rank per GPU\n", comm.size(), fewest);
      }
#else
      if (comm.rank() == 0) std::printf("skipped NCCL: this build has no NCCL\n");
#endif
      if (comm.rank() == 0) std::printf("%d failure(s) with %d ranks\n", failures, comm.size());
      status = failures == 0 ? 0 : 1;
    }
  }
  MPI_Finalize();
  return status;
}
