// Checkpoints: a small documented binary format for a list of named parameters.
//
// Layout (little-endian): the 8 bytes "LLCKPT02"; uint32 count; then per entry: uint32 name
// length, the name bytes, int64 rows, int64 cols, rows*cols float64 values (row-major); then
// the 8 bytes "LLCKPTEN"; finally a uint64 FNV-1a (64-bit) checksum of every byte before it, so a
// changed byte anywhere is reported as corruption. Files of the first version ("LLCKPT01", no
// checksum) are still read. Values are stored as float64 whatever the model's Scalar. An optional
// first entry named "@" + architecture with shape [0,0] (counted in count) says which model wrote
// the file, e.g. "@task_model decay=gla": what names and shapes cannot tell apart (decays
// without parameters) is told by it.
#pragma once

#include <loglinear/models/param.hpp>

#include <string>
#include <vector>

namespace loglinear::models {

/// Writes `params` to `path` (atomically: a temporary file renamed over the target), preceded
/// by the architecture entry if `architecture` is not empty.
/// @throws std::runtime_error if the file cannot be written.
template <class Scalar>
void save_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture = "");

/// Reads `path` into `params`, which must match the file's names and shapes in order.
/// Nothing is modified unless the whole file is valid. If both `architecture` and the file's
/// architecture entry are present they must be equal; a file without the entry (written
/// without one) is judged by names and shapes alone, and an empty `architecture` skips the check.
/// @throws std::runtime_error on an unreadable, truncated or corrupt file;
/// @throws std::invalid_argument on an architecture, count, name or shape mismatch (the message
///         names both sides).
template <class Scalar>
void load_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture = "");

}  // namespace loglinear::models
