// What the fuzz harnesses share: a decoder that turns fuzz bytes into arguments biased to the
// edges (0, -1, powers of two +-1, INT64_MIN/MAX), and the contract every public entry point
// keeps on hostile input: it returns, or throws std::invalid_argument / std::runtime_error whose
// message begins with the argument's name. Anything else (another exception, a wrong message, a
// changed output after a refusal) is a ContractViolation.
//
// The harnesses are header-only so that two programs run them: the libFuzzer targets
// (fuzz_*.cpp, clang) and the ordinary Catch2 suite (gcc), which replays every committed
// regression input through the same code.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <utility>
#include <vector>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

namespace loglinear::fuzz {

/// A broken promise of the code under test (the harness aborts on it, the Catch2 replay fails).
struct ContractViolation : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] inline void violation(const std::string& what) { throw ContractViolation(what); }

/// Reads arguments from fuzz bytes; reads past the end give zeros, so every input decodes.
class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return std::uint16_t(byte() | (unsigned(byte()) << 8)); }
  std::uint64_t u64() {
    std::uint64_t x = 0;
    for (int i = 0; i < 8; ++i) x |= std::uint64_t(byte()) << (8 * i);
    return x;
  }
  /// The bytes not read yet (consumed).
  std::string_view rest() {
    const size_t at = pos_ < size_ ? pos_ : size_;
    pos_ = size_;
    return {reinterpret_cast<const char*>(data_ + at), size_ - at};
  }

  /// A signed size or index. A class byte picks the kind: small, a power of two +-1, negative,
  /// an extreme of int64 or 32-bit arithmetic, or 8 raw bytes.
  std::int64_t index() {
    constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
    switch (byte() % 8) {
      case 0: return byte() % 16;
      case 1: return byte();
      case 2: return u16();
      case 3: {
        const int shift = byte() % 63;
        return (std::int64_t(1) << shift) + (byte() % 3) - 1;
      }
      case 4: return -std::int64_t(byte());
      case 5: {
        const std::int64_t edges[] = {max, min, max / 2, std::int64_t(1) << 31, (std::int64_t(1) << 31) - 1,
                                      std::int64_t(1) << 32, std::int64_t(1) << 62, -1};
        return edges[byte() % 8];
      }
      case 6: {
        const std::uint64_t raw = u64();
        std::int64_t x;
        std::memcpy(&x, &raw, sizeof x);
        return x;
      }
      default: return u16() % 4096;
    }
  }

  /// A double: a fraction byte / 255, an edge value (0, 1, NaN, +-inf, tiny, just below 1), or
  /// 8 raw bytes.
  double real() {
    switch (byte() % 3) {
      case 0: return byte() / 255.0;
      case 1: {
        const double edges[] = {0.0, 1.0, std::numeric_limits<double>::quiet_NaN(),
                                std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                1e-300, 0.5, 1.0 - 1e-16};
        return edges[byte() % 8];
      }
      default: {
        const std::uint64_t raw = u64();
        double x;
        std::memcpy(&x, &raw, sizeof x);
        return x;
      }
    }
  }

 private:
  const std::uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

/// Runs `f`; true if it returned. A std::invalid_argument or std::runtime_error is allowed only
/// if its message begins with one of `prefixes` (the argument's name and a colon, or
/// `checkpoint "<source>": `); `message` receives it. Every other exception is a violation.
template <class F>
bool returns_or_refuses(F&& f, std::initializer_list<std::string_view> prefixes, std::string* message = nullptr) {
  std::string what;
  try {
    f();
    return true;
  } catch (const ContractViolation&) {
    throw;
  } catch (const std::invalid_argument& e) {
    what = e.what();
  } catch (const std::runtime_error& e) {
    what = e.what();
  } catch (const std::exception& e) {
    violation(std::string("unexpected exception ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    violation("unexpected exception of a non-standard type");
  }
  bool named = false;
  for (auto p : prefixes) named = named || std::string_view(what).substr(0, p.size()) == p;
  if (!named) violation("error message does not begin with the argument's name: \"" + what + "\"");
  if (message) *message = what;
  return false;
}

/// This folder (tests/fuzz/): from the path the compiler gave this header (absolute in a CMake
/// build), else the first tests/fuzz/ above the working directory.
inline std::filesystem::path fuzz_dir() {
  const auto here = std::filesystem::path(__FILE__).parent_path();
  if (std::filesystem::is_directory(here / "regressions")) return here;
  for (auto dir = std::filesystem::current_path(); !dir.empty(); dir = dir.parent_path()) {
    if (std::filesystem::is_directory(dir / "tests/fuzz/regressions")) return dir / "tests/fuzz";
    if (dir == dir.parent_path()) break;
  }
  return here;
}

/// The committed inputs of a target, for the Catch2 replay: every file of the folders
/// tests/fuzz/regressions/<target>/ and tests/fuzz/corpus/<target>/ as (path, bytes), sorted.
inline std::vector<std::pair<std::string, std::string>> committed_inputs(const std::string& target) {
  const auto fuzz_dir = loglinear::fuzz::fuzz_dir();
  std::vector<std::pair<std::string, std::string>> inputs;
  for (const char* kind : {"regressions", "corpus"}) {
    const auto dir = fuzz_dir / kind / target;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream f(entry.path(), std::ios::binary);
      inputs.emplace_back(entry.path().string(),
                          std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()));
    }
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

}  // namespace loglinear::fuzz
