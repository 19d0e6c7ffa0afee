// NcclCommunicator (declared and described in nccl/loglinear/nccl/communicator.hpp): NCCL group
// set-up and the staged all-gather. Every CUDA and NCCL call is checked and named in the error.
#include <loglinear/nccl/communicator.hpp>

#include <stdexcept>
#include <string>

namespace loglinear::nccl {

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("loglinear::nccl: ") + what + ": " + cudaGetErrorString(e));
}
void check(ncclResult_t e, const char* what) {
  if (e != ncclSuccess) throw std::runtime_error(std::string("loglinear::nccl: ") + what + ": " + ncclGetErrorString(e));
}

// A device buffer freed on every path (the all-gather's staging).
struct DeviceBytes {
  void* p = nullptr;
  explicit DeviceBytes(std::size_t n) { if (n) check(cudaMalloc(&p, n), "cudaMalloc (all-gather staging)"); }
  ~DeviceBytes() { if (p) cudaFree(p); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
};

void check_device(int device) {
  int n = 0;
  check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
  if (device < 0 || device >= n) {
    throw std::invalid_argument("device: expected 0 <= device < " + std::to_string(n) + " (the CUDA devices here), got " +
                                std::to_string(device));
  }
}

}  // namespace

ncclUniqueId NcclCommunicator::unique_id() {
  ncclUniqueId id;
  check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  return id;
}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, int rank, int size, int device)
    : comm_(comm), rank_(rank), size_(size), device_(device) {
  check(cudaSetDevice(device_), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
}

NcclCommunicator::NcclCommunicator(int rank, int size, const ncclUniqueId& id, int device) {
  if (size < 1 || rank < 0 || rank >= size) {
    throw std::invalid_argument("rank: expected 0 <= rank < size with size >= 1, got rank " + std::to_string(rank) +
                                " of " + std::to_string(size));
  }
  check_device(device);
  check(cudaSetDevice(device), "cudaSetDevice");
  check(ncclCommInitRank(&comm_, size, id, rank), "ncclCommInitRank");
  rank_ = rank, size_ = size, device_ = device;
  const cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    ncclCommDestroy(comm_);
    check(e, "cudaStreamCreate");
  }
}

std::unique_ptr<NcclCommunicator> NcclCommunicator::single(int device) {
  check_device(device);
  ncclComm_t comm = nullptr;
  check(ncclCommInitAll(&comm, 1, &device), "ncclCommInitAll");
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(comm, 0, 1, device));
}

NcclCommunicator::~NcclCommunicator() {
  if (stream_) cudaStreamDestroy(stream_);
  if (comm_) ncclCommDestroy(comm_);
}

void NcclCommunicator::allgather(const void* send, std::size_t bytes, void* recv) const {
  if (bytes == 0) return;
  if (send == nullptr || recv == nullptr) throw std::invalid_argument("allgather: expected non-null send and recv buffers");
  check(cudaSetDevice(device_), "cudaSetDevice");
  const DeviceBytes d_send(bytes), d_recv(bytes * std::size_t(size_));
  check(cudaMemcpyAsync(d_send.p, send, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync (to the device)");
  check(ncclAllGather(d_send.p, d_recv.p, bytes, ncclChar, comm_, stream_), "ncclAllGather");
  check(cudaMemcpyAsync(recv, d_recv.p, bytes * std::size_t(size_), cudaMemcpyDeviceToHost, stream_),
        "cudaMemcpyAsync (to the host)");
  check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (all-gather)");
}

}  // namespace loglinear::nccl
