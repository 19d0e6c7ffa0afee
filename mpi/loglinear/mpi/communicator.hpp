// The Communicator of context parallelism over MPI (Debian's OpenMPI): one rank per process,
// MPI_Allgather on bytes. Built only when CMake finds MPI (target loglinear::mpi).
/// \file
/// \brief MpiCommunicator: context parallelism's all-gather over an MPI communicator
/// \ingroup floor_context_parallel
#pragma once

#include <loglinear/context_parallel/communicator.hpp>

#include <mpi.h>

namespace loglinear::mpi {

/// The ranks of an MPI communicator (MPI_COMM_WORLD by default). MPI must be initialised by the
/// caller (MPI_Init) before the first call and finalised after the last.
class MpiCommunicator final : public Communicator {
 public:
  /// @param comm  the communicator whose ranks split the sequence (not duplicated, not freed)
  /// @throws std::runtime_error if MPI is not initialised or the communicator cannot be queried.
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD);
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  /// MPI_Allgather of `bytes` bytes (in pieces of at most 2^30 bytes, MPI's int counts).
  /// @throws std::runtime_error naming the MPI error if the transport fails.
  void allgather(const void* send, std::size_t bytes, void* recv) const override;

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace loglinear::mpi
