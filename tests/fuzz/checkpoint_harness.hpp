// Fuzz harness of the checkpoint loader (reference/loglinear/train/checkpoint.hpp). The first
// byte picks how the rest becomes a file:
//   0  the raw bytes;
//   1  the raw bytes with a valid checksum appended (so "LLCKPT02" inputs reach the parser);
//   2  a valid checkpoint of four parameters, written by the encoder below from the format in
//      checkpoint.hpp, then edited: truncated, bits flipped, bytes inserted or erased, and
//      counts, name lengths and shapes overwritten with huge, negative or random numbers, with
//      the checksum fixed again or not;
//   3  as 2, through a temporary file and load_checkpoint(path).
// Contract: load_checkpoint_bytes returns, or throws std::runtime_error / std::invalid_argument
// whose message begins `checkpoint "<source>": ` and leaves every parameter as it was. An
// unedited file must load its values exactly (or be refused for the documented reasons: an
// architecture mismatch, a value that is not finite or does not fit Scalar).
// Used by fuzz_checkpoint.cpp (libFuzzer) and tests/train/test_checkpoint.cpp (gcc).
#pragma once

#include "fuzz_support.hpp"

#include <loglinear/train/checkpoint.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

namespace loglinear::fuzz {

/// One parameter of the fuzzed model.
struct ParamSpec {
  const char* name;
  std::int64_t rows, cols;
};
/// The fuzzed model: a matrix, a row, an empty matrix and a scalar.
inline constexpr ParamSpec kCheckpointParams[] = {{"embedding", 2, 3}, {"norm.weight", 1, 3}, {"empty", 0, 5},
                                                  {"scale", 1, 1}};
/// Its architecture entry.
inline constexpr const char* kCheckpointArch = "fuzz model";

/// FNV-1a 64 as checkpoint.hpp specifies it.
inline std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : bytes) h = (h ^ std::uint8_t(c)) * 1099511628211ull;
  return h;
}

/// A checkpoint's bytes and where its numeric fields are (offset, width 4 or 8), so that edits
/// can aim at them.
struct EncodedCheckpoint {
  std::string bytes;
  std::vector<std::pair<size_t, int>> fields;
};

/// Writes the format of checkpoint.hpp (independently of save_checkpoint): version 2 with its
/// checksum, or version 1 without; the architecture entry if `arch` is not empty.
inline EncodedCheckpoint encode_checkpoint(bool v1, const std::string& arch, const std::vector<double>& values) {
  EncodedCheckpoint e;
  auto put = [&](const void* p, size_t n) { e.bytes.append(static_cast<const char*>(p), n); };
  auto field = [&](auto x) {
    e.fields.emplace_back(e.bytes.size(), int(sizeof x));
    put(&x, sizeof x);
  };
  auto header = [&](const std::string& name, std::int64_t rows, std::int64_t cols) {
    field(std::uint32_t(name.size()));
    put(name.data(), name.size());
    field(rows);
    field(cols);
  };
  put(v1 ? "LLCKPT01" : "LLCKPT02", 8);
  field(std::uint32_t(std::size(kCheckpointParams) + (arch.empty() ? 0 : 1)));
  if (!arch.empty()) header("@" + arch, 0, 0);
  size_t k = 0;
  for (const auto& p : kCheckpointParams) {
    header(p.name, p.rows, p.cols);
    for (std::int64_t i = 0; i < p.rows * p.cols; ++i) put(&values.at(k++), sizeof(double));
  }
  put("LLCKPTEN", 8);
  if (!v1) {
    const std::uint64_t h = fnv1a(e.bytes);
    put(&h, sizeof h);
  }
  return e;
}

/// Number of values of the fuzzed model.
inline size_t checkpoint_value_count() {
  size_t n = 0;
  for (const auto& p : kCheckpointParams) n += size_t(p.rows * p.cols);
  return n;
}

/// Replaces the trailing checksum of a version-2 file by the right one (appends one if short).
inline void fix_checksum(std::string& bytes) {
  if (bytes.size() < 8) return;
  bytes.resize(bytes.size() - 8);
  const std::uint64_t h = fnv1a(bytes);
  bytes.append(reinterpret_cast<const char*>(&h), sizeof h);
}

template <class Scalar>
struct FuzzModel {
  std::vector<std::unique_ptr<Param<Scalar>>> owned;
  std::vector<Param<Scalar>*> params;
  FuzzModel() {
    int k = 0;
    for (const auto& p : kCheckpointParams) {
      RowMatrix<Scalar> v(p.rows, p.cols);
      for (Index i = 0; i < v.size(); ++i) v.data()[i] = Scalar(-7.5 + 0.5 * k++);
      owned.push_back(std::make_unique<Param<Scalar>>(p.name, v));
      params.push_back(owned.back().get());
    }
  }
  std::vector<RowMatrix<Scalar>> snapshot() const {
    std::vector<RowMatrix<Scalar>> s;
    for (const auto* p : params) s.push_back(p->value);
    return s;
  }
};

/// What an unedited file must do.
enum class Expect { any, load, refuse_arch, refuse_value };

template <class Scalar>
void check_load(const std::string& bytes, const std::string& architecture, bool via_file, Expect expect,
                const std::vector<double>& values) {
  FuzzModel<Scalar> model;
  const auto before = model.snapshot();
  std::string source = "<memory>";
  if (via_file) {
    source = (std::filesystem::temp_directory_path() / ("loglinear_fuzz_" + std::to_string(::getpid()) + ".ckpt"))
                 .string();
    std::ofstream(source, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  }
  std::string message;
  const bool loaded = returns_or_refuses(
      [&] {
        if (via_file) {
          train::load_checkpoint(source, model.params, architecture);
        } else {
          train::load_checkpoint_bytes(bytes, model.params, architecture);
        }
      },
      {"checkpoint \"" + source + "\": "}, &message);
  if (via_file) std::remove(source.c_str());
  for (size_t i = 0; i < model.params.size(); ++i) {
    const auto& v = model.params[i]->value;
    if (v.rows() != before[i].rows() || v.cols() != before[i].cols()) violation("a parameter changed shape");
    if (!loaded && v != before[i]) violation("a refused file changed " + model.params[i]->name + ": " + message);
    if (loaded && !v.allFinite()) violation("a loaded value is not finite");
  }
  const auto has = [&](const char* s) { return message.find(s) != std::string::npos; };
  switch (expect) {
    case Expect::any: break;
    case Expect::load: {
      if (!loaded) violation("a valid file was refused: " + message);
      size_t k = 0;
      for (const auto* p : model.params)
        for (Index i = 0; i < p->value.size(); ++i)
          if (p->value.data()[i] != Scalar(values[k++])) violation("a loaded value differs from the file's");
      break;
    }
    case Expect::refuse_arch:
      if (loaded || !has("written by the model")) violation("an architecture mismatch was not refused: " + message);
      break;
    case Expect::refuse_value:
      if (loaded || !has("corrupt value")) violation("a non-finite or too large value was not refused: " + message);
      break;
  }
}

/// Overwrites a numeric field with a value chosen by the input: an edge of its width or raw.
inline void overwrite_field(std::string& bytes, std::pair<size_t, int> field, FuzzInput& in) {
  const auto [at, width] = field;
  if (at + size_t(width) > bytes.size()) return;
  std::uint64_t x;
  const std::uint8_t kind = in.byte();
  if (kind % 2) {
    x = in.u64();
  } else if (width == 4) {
    const std::uint32_t edges[] = {0, 1, 2, 4096, 4097, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    x = edges[(kind / 2) % 8];
  } else {
    const std::uint64_t edges[] = {0, 1, 3, std::uint64_t(1) << 20, std::uint64_t(1) << 40,
                                   (std::uint64_t(1) << 40) + 1, std::uint64_t(1) << 62, 0x7fffffffffffffffull,
                                   0x8000000000000000ull, 0xffffffffffffffffull};
    x = edges[(kind / 2) % 10];
  }
  std::memcpy(&bytes[at], &x, size_t(width));  // little-endian host, as the format
}

/// One fuzz input (see the top of this file).
inline void checkpoint_one_input(const std::uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const std::uint8_t mode = in.byte(), flags = in.byte();
  const bool as_float = flags & 4;
  const std::string arch_choices[] = {"", kCheckpointArch, "other model", ""};
  const std::string expected_arch = arch_choices[(flags >> 3) % 4];
  const auto load = [&](const std::string& bytes, bool via_file, Expect expect, const std::vector<double>& values) {
    if (as_float) {
      check_load<float>(bytes, expected_arch, via_file, expect, values);
    } else {
      check_load<double>(bytes, expected_arch, via_file, expect, values);
    }
  };
  if (mode % 4 < 2) {
    std::string bytes(in.rest());
    if (mode % 4 == 1) bytes.append(8, '\0'), fix_checksum(bytes);
    return load(bytes, false, Expect::any, {});
  }
  const bool v1 = flags & 1, with_arch = flags & 2, refix = flags & 32, random_values = flags & 64;
  std::vector<double> values(checkpoint_value_count());
  for (size_t i = 0; i < values.size(); ++i) values[i] = random_values ? in.real() * 1e6 : 0.25 * double(i + 1) - 1;
  EncodedCheckpoint e = encode_checkpoint(v1, with_arch ? kCheckpointArch : "", values);
  const int edits = in.byte() % 4;
  for (int k = 0; k < edits && !e.bytes.empty(); ++k) {
    const std::uint8_t op = in.byte();
    const size_t at = in.u16() % e.bytes.size();
    switch (op % 6) {
      case 0: e.bytes.resize(at); break;
      case 1: e.bytes[at] = char(e.bytes[at] ^ (1 << (op / 6 % 8))); break;
      case 2:
      case 3: overwrite_field(e.bytes, e.fields[at % e.fields.size()], in); break;
      case 4: e.bytes.insert(e.bytes.begin() + std::ptrdiff_t(at), char(in.byte())); break;
      default: e.bytes.erase(e.bytes.begin() + std::ptrdiff_t(at)); break;
    }
  }
  if (refix && !v1) fix_checksum(e.bytes);
  Expect expect = Expect::any;
  if (edits == 0) {
    const double max = as_float ? double(std::numeric_limits<float>::max()) : std::numeric_limits<double>::max();
    bool values_ok = true;
    for (double x : values) values_ok = values_ok && std::isfinite(x) && std::abs(x) <= max;
    if (with_arch && !expected_arch.empty() && expected_arch != kCheckpointArch) {
      expect = Expect::refuse_arch;
    } else {
      expect = values_ok ? Expect::load : Expect::refuse_value;
    }
  }
  load(e.bytes, mode % 4 == 3, expect, values);
}

}  // namespace loglinear::fuzz
