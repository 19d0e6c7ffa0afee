// MpiCommunicator: the all-gather of context parallelism over MPI, in pieces that fit MPI's int
// counts, with MPI errors returned (MPI_ERRORS_RETURN) and turned into exceptions.
#include <loglinear/mpi/communicator.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace loglinear::mpi {

namespace {

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(what) + ": " + std::string(text, static_cast<size_t>(length)));
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) throw std::runtime_error("MpiCommunicator: MPI is not initialised (call MPI_Init first)");
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MpiCommunicator: MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(comm_, &rank_), "MpiCommunicator: MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MpiCommunicator: MPI_Comm_size");
}

void MpiCommunicator::allgather(const void* send, std::size_t bytes, void* recv) const {
  // Rank r's block goes to recv + r * bytes. MPI counts are ints, so blocks above 1 GiB travel in
  // pieces: piece p of every rank lands at its place in every rank's block (a strided gather).
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  std::vector<char> staging;
  for (std::size_t offset = 0; offset < bytes; offset += kPiece) {
    const std::size_t n = std::min(kPiece, bytes - offset);
    staging.resize(n * static_cast<std::size_t>(size_));
    check(MPI_Allgather(static_cast<const char*>(send) + offset, static_cast<int>(n), MPI_BYTE, staging.data(),
                        static_cast<int>(n), MPI_BYTE, comm_),
          "allgather: MPI_Allgather");
    for (int r = 0; r < size_; ++r) {
      std::copy_n(staging.data() + static_cast<std::size_t>(r) * n, n,
                  static_cast<char*>(recv) + static_cast<std::size_t>(r) * bytes + offset);
    }
  }
}

}  // namespace loglinear::mpi
