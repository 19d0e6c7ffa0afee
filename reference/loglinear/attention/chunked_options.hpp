// The options of the chunked form (the chunk size), on their own so that the CUDA backend's
// public header can take them without the CPU recurrent form (chunked.hpp includes recurrent.hpp
// for the state type).
/// \file
/// \brief The options of the chunked form (the chunk size), on their own so that the CUDA backend's public header can take them without the CPU recurrent form ...
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>

namespace loglinear {

/// Options of the chunked form.
///
/// The chunk size C must be a power of two >= 1 (anything else is refused with
/// std::invalid_argument). A C above the sequence is clamped, never refused: the call uses
/// min(C, the smallest power of two >= t0 + T) (effective_chunk_size in core/checks.hpp), which
/// gives the same chunking and bit-identical results as any larger C, so chunk_size = 2^40 at
/// T = 100 works like chunk_size = 128. Work arrays are sized from the clamped C only, and sizes
/// that cannot fit in memory (the C x C level table, the K x V summary of every chunk) are
/// refused with std::invalid_argument before anything is allocated.
struct ChunkedOptions {
  Index chunk_size = 64;  ///< C, a power of two >= 1; values above T are clamped (see above)
};

}  // namespace loglinear
