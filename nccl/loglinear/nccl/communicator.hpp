// The Communicator of context parallelism over NCCL (issue 17 item 3): the all-gather of
// reference/loglinear/context_parallel/communicator.hpp on NVIDIA's collective library, one rank
// per GPU. The context-parallel algorithm exchanges small host buffers (per-level state summaries,
// B H L K V floats a rank), so each all-gather stages them through device memory: copy in,
// ncclAllGather on the communicator's stream, copy out. Built when CMake finds NCCL beside the CUDA
// toolkit (nccl/CMakeLists.txt).
/// \file
/// \brief Context parallelism over NCCL: the all-gather on GPUs
/// \ingroup floor_context_parallel
#pragma once

#include <loglinear/context_parallel/communicator.hpp>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <memory>

namespace loglinear::nccl {

/// A group of R ranks, one per GPU, joined through NCCL.
class NcclCommunicator final : public Communicator {
 public:
  /// A fresh group id: rank 0 makes it and every rank must receive it (e.g. by MPI_Bcast of its
  /// bytes) before constructing its communicator.
  /// @throws std::runtime_error naming the NCCL error.
  static ncclUniqueId unique_id();

  /// Joins group `id` as rank `rank` of `size` on CUDA device `device` (ncclCommInitRank: a
  /// collective, every rank must call it). One rank per device.
  /// @throws std::invalid_argument on a bad rank, size or device ("rank: expected 0 <= rank < size ...");
  ///         std::runtime_error naming the CUDA or NCCL error.
  NcclCommunicator(int rank, int size, const ncclUniqueId& id, int device);

  /// The group of one rank on `device` (ncclCommInitAll): context parallelism's R = 1 on one GPU.
  static std::unique_ptr<NcclCommunicator> single(int device = 0);

  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }   ///< this process's rank
  int size() const override { return size_; }   ///< ranks in the group
  int device() const { return device_; }        ///< the CUDA device of this rank

  /// Gathers every rank's `bytes` bytes at host `send` into host `recv` (size() blocks, rank
  /// order), staged through device memory; blocks until done.
  /// @throws std::invalid_argument on null buffers; std::runtime_error on a CUDA or NCCL error.
  void allgather(const void* send, std::size_t bytes, void* recv) const override;

 private:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device);
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace loglinear::nccl
