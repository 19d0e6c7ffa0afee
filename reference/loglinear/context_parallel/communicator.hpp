// The one collective context parallelism needs (docs/context_parallel.md §3): every rank sends a
// block of the same size and receives every rank's block, in rank order. The algorithm in
// context_parallel.hpp is written against this interface, so it runs unchanged over MPI
// (mpi/loglinear/mpi/communicator.hpp), over NCCL later, and in one process (SelfCommunicator).
/// \file
/// \brief The all-gather interface of context parallelism, and its one-process implementation
/// \ingroup floor_context_parallel
#pragma once

#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace loglinear {

/// A group of R ranks that can all-gather equal-sized byte blocks.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's rank, 0 <= rank() < size().
  virtual int rank() const = 0;
  /// The number of ranks R >= 1.
  virtual int size() const = 0;
  /// Every rank passes `bytes` bytes at `send`; afterwards `recv` holds size() blocks of `bytes`
  /// bytes, block r being rank r's. A collective: every rank must call it, with the same `bytes`.
  /// @throws std::runtime_error if the transport fails.
  virtual void allgather(const void* send, std::size_t bytes, void* recv) const = 0;
};

/// The group of one rank: the all-gather is a copy. Context parallelism over it is the
/// single-process chunked call plus the bookkeeping (the R = 1 case of every test).
class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allgather(const void* send, std::size_t bytes, void* recv) const override {
    if (bytes > 0 && (send == nullptr || recv == nullptr)) {
      throw std::invalid_argument("allgather: expected non-null send and recv buffers");
    }
    if (bytes > 0) std::memcpy(recv, send, bytes);
  }
};

}  // namespace loglinear
