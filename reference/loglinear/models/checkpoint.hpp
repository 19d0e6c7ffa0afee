// Checkpoints: a small documented binary format for a list of named parameters.
//
// Layout (little-endian): the 8 bytes "LLCKPT01"; uint32 count; then per parameter: uint32
// name length, the name bytes, int64 rows, int64 cols, rows*cols float64 values (row-major);
// finally the 8 bytes "LLCKPTEN". Values are stored as float64 whatever the model's Scalar.
#pragma once

#include <loglinear/models/param.hpp>

#include <string>
#include <vector>

namespace loglinear::models {

/// Writes `params` to `path` (atomically: a temporary file renamed over the target).
/// @throws std::runtime_error if the file cannot be written.
template <class Scalar>
void save_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params);

/// Reads `path` into `params`, which must match the file's names and shapes in order.
/// Nothing is modified unless the whole file is valid.
/// @throws std::runtime_error on an unreadable, truncated or corrupt file;
/// @throws std::invalid_argument on a name or shape mismatch (the message names both).
template <class Scalar>
void load_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params);

}  // namespace loglinear::models
