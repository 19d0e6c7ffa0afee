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
//
// Hostile bytes: every size the bytes declare (entry count, name length, shape) is checked
// against the bytes that remain before it is used, names are at most 4096 bytes, shapes at most
// 2^40 elements, and values are only allocated for an entry whose name and shape equal the
// parameter's, so a file costs at most its own size plus one copy of the parameters. Every
// value must be finite and fit the parameter's Scalar. tests/fuzz/fuzz_checkpoint.cpp fuzzes
// load_checkpoint_bytes with libFuzzer (scripts/fuzz.sh).
/// \file
/// \brief Checkpoints
/// \ingroup floor_train
#pragma once

#include <loglinear/core/param.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace loglinear::train {

/// Writes `params` to `path` (atomically: a temporary file renamed over the target), preceded
/// by the architecture entry if `architecture` is not empty.
/// @throws std::runtime_error if the file cannot be written;
/// @throws std::invalid_argument if a name (or "@" + architecture) is longer than 4096 bytes.
template <class Scalar>
void save_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture = "");

/// Reads `path` into `params`, which must match the file's names and shapes in order.
/// Nothing is modified unless the whole file is valid. If both `architecture` and the file's
/// architecture entry are present they must be equal; a file without the entry (written
/// without one) is judged by names and shapes alone, and an empty `architecture` skips the check.
/// @throws std::runtime_error on a missing, unreadable (not a regular file), truncated or
///         corrupt file, or a value that is not finite or does not fit Scalar;
/// @throws std::invalid_argument on an architecture, count, name or shape mismatch (the message
///         names both sides).
template <class Scalar>
void load_checkpoint(const std::string& path, const std::vector<Param<Scalar>*>& params,
                     const std::string& architecture = "");

/// Reads a checkpoint that is already in memory: `bytes` is a whole file in the format above.
/// Same checks, errors and all-or-nothing update as load_checkpoint, which calls it with the
/// file's bytes; `source` names the bytes in every message (load_checkpoint passes the path).
/// @throws std::runtime_error on truncated or corrupt bytes (the message begins
///         `checkpoint "<source>":`);
/// @throws std::invalid_argument on an architecture, count, name or shape mismatch.
template <class Scalar>
void load_checkpoint_bytes(std::string_view bytes, const std::vector<Param<Scalar>*>& params,
                           const std::string& architecture = "", const std::string& source = "<memory>");

}  // namespace loglinear::train
