// Checkpoint loader (reference/loglinear/train/checkpoint.hpp) on hostile bytes: the inputs that
// broke it or sit on its limits, as named cases, and a replay of every committed libFuzzer input
// (tests/fuzz/regressions/checkpoint/, tests/fuzz/corpus/checkpoint/) through the fuzz harness,
// so the gcc suite covers them without clang.
#include "fuzz/checkpoint_harness.hpp"

#include <loglinear/train/checkpoint.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

using namespace loglinear;
using namespace loglinear::train;
using loglinear::fuzz::checkpoint_value_count;
using loglinear::fuzz::encode_checkpoint;
using loglinear::fuzz::FuzzModel;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::StartsWith;

namespace {
std::vector<double> ramp() {
  std::vector<double> v(checkpoint_value_count());
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25 * double(i + 1) - 1;
  return v;
}

// Overwrites the numeric field `k` (in the encoder's order: count, then per entry name length,
// rows, cols) of an encoded file, fixing the checksum of a version-2 file again.
std::string with_field(bool v1, size_t k, std::uint64_t value) {
  auto e = encode_checkpoint(v1, "", ramp());
  const auto [at, width] = e.fields.at(k);
  std::memcpy(&e.bytes[at], &value, size_t(width));
  if (!v1) fuzz::fix_checksum(e.bytes);
  return e.bytes;
}

// Loads `bytes` into the harness's model; the model must be unchanged after a refusal.
template <class Scalar = double>
void load(const std::string& bytes, const std::string& architecture = "") {
  FuzzModel<Scalar> model;
  const auto before = model.snapshot();
  try {
    load_checkpoint_bytes(bytes, model.params, architecture);
  } catch (...) {
    for (size_t i = 0; i < before.size(); ++i) CHECK(model.params[i]->value == before[i]);
    throw;
  }
}
}  // namespace

TEST_CASE("checkpoint: the fuzz harness's encoder writes exactly the bytes save_checkpoint writes",
          "[checkpoint][fuzz]") {
  const bool with_arch = GENERATE(false, true);
  CAPTURE(with_arch);
  FuzzModel<double> model;
  std::vector<double> values;
  for (const auto* p : model.params)
    for (Index i = 0; i < p->value.size(); ++i) values.push_back(p->value.data()[i]);
  const std::string path = "loglinear_test_checkpoint_encoder.bin";
  save_checkpoint(path, model.params, with_arch ? fuzz::kCheckpointArch : "");
  std::ifstream f(path, std::ios::binary);
  const std::string saved((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  CHECK(saved == encode_checkpoint(false, with_arch ? fuzz::kCheckpointArch : "", values).bytes);
  // And the bytes load from memory as from the file.
  FuzzModel<double> other;
  for (auto* p : other.params) p->value.setZero();
  load_checkpoint_bytes(saved, other.params, with_arch ? fuzz::kCheckpointArch : "");
  for (size_t i = 0; i < model.params.size(); ++i) CHECK(other.params[i]->value == model.params[i]->value);
}

TEST_CASE("checkpoint: a value that is NaN, infinite or beyond float's range is refused as corrupt",
          "[checkpoint][errors]") {
  // Found by fuzz_checkpoint: such values loaded silently (a v1 file has no checksum to catch a
  // flipped exponent bit). The message names the parameter and the element.
  const double bad = GENERATE(std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity());
  const bool v1 = GENERATE(false, true);
  CAPTURE(bad, v1);
  auto values = ramp();
  values[4] = bad;  // embedding [1,1]
  const std::string bytes = encode_checkpoint(v1, "", values).bytes;
  CHECK_THROWS_WITH(load(bytes), ContainsSubstring("corrupt value of embedding at [1,1]"));
  CHECK_THROWS_AS(load<float>(bytes), std::runtime_error);
  values[4] = 1e300;  // fits double, not float
  const std::string big = encode_checkpoint(v1, "", values).bytes;
  CHECK_NOTHROW(load<double>(big));
  CHECK_THROWS_WITH(load<float>(big), ContainsSubstring("expected a finite value that fits float"));
}

TEST_CASE("checkpoint: a declared entry count the bytes cannot hold is corruption, not a mismatch",
          "[checkpoint][errors]") {
  const bool v1 = GENERATE(false, true);
  const std::uint64_t count = GENERATE(std::uint64_t(5000), std::uint64_t(0x80000000u), std::uint64_t(0xffffffffu));
  CAPTURE(v1, count);
  CHECK_THROWS_WITH(load(with_field(v1, 0, count)),
                    StartsWith("checkpoint \"<memory>\": corrupt file (" + std::to_string(count) +
                               " entries declared"));
  // A count the bytes could hold but the model does not have: a mismatch that names both.
  CHECK_THROWS_WITH(load(with_field(v1, 0, 3)), ContainsSubstring("expected 4 parameters, the file has 3"));
}

TEST_CASE("checkpoint: a name length or shape whose bytes are not in the file is refused before any allocation",
          "[checkpoint][errors]") {
  const bool v1 = GENERATE(false, true);
  CAPTURE(v1);
  // Field 1 is embedding's name length, 2 and 3 its rows and cols.
  CHECK_THROWS_WITH(load(with_field(v1, 1, 4096)), ContainsSubstring("truncated"));
  CHECK_THROWS_WITH(load(with_field(v1, 1, 4097)), ContainsSubstring("corrupt parameter name (length 4097"));
  CHECK_THROWS_WITH(load(with_field(v1, 1, 0xffffffffu)), ContainsSubstring("corrupt parameter name"));
  const std::uint64_t int64_max = std::uint64_t(std::numeric_limits<std::int64_t>::max());
  CHECK_THROWS_WITH(load(with_field(v1, 2, int64_max)), ContainsSubstring("corrupt shape of embedding"));
  CHECK_THROWS_WITH(load(with_field(v1, 2, std::uint64_t(-1))), ContainsSubstring("corrupt shape of embedding [-1,3]"));
  // 2^20 x 2^20 = 2^40 values is a legal shape, but 8 TiB of them are not in a 220-byte file.
  auto e = encode_checkpoint(v1, "", ramp());
  const std::uint64_t big = std::uint64_t(1) << 20;
  std::memcpy(&e.bytes[e.fields[2].first], &big, 8);
  std::memcpy(&e.bytes[e.fields[3].first], &big, 8);
  if (!v1) fuzz::fix_checksum(e.bytes);
  CHECK_THROWS_WITH(load(e.bytes), ContainsSubstring("truncated"));
}

TEST_CASE("checkpoint: a path that is not a regular file is refused instead of read forever",
          "[checkpoint][errors]") {
  // /dev/zero used to be read until memory ran out (it has no end).
  FuzzModel<float> model;
  if (std::filesystem::exists("/dev/zero")) {
    CHECK_THROWS_WITH(load_checkpoint("/dev/zero", model.params), ContainsSubstring("(not a regular file)"));
  }
  CHECK_THROWS_WITH(load_checkpoint(std::filesystem::temp_directory_path().string(), model.params),
                    ContainsSubstring("not a regular file"));
  CHECK_THROWS_WITH(load_checkpoint("/nonexistent/x.bin", model.params), ContainsSubstring("cannot open for reading"));
}

TEST_CASE("checkpoint: save refuses a name longer than the reader accepts", "[checkpoint][errors]") {
  Param<float> long_name(std::string(4097, 'w'), RowMatrix<float>::Zero(1, 1));
  const std::string path = "loglinear_test_checkpoint_long_name.bin";
  CHECK_THROWS_WITH(save_checkpoint<float>(path, {&long_name}),
                    ContainsSubstring("params: expected names of at most 4096"));
  CHECK_FALSE(std::filesystem::exists(path));
  Param<float> ok("w", RowMatrix<float>::Zero(1, 1));
  CHECK_THROWS_WITH(save_checkpoint<float>(path, {&ok}, std::string(4096, 'a')),
                    ContainsSubstring("architecture: expected at most 4095 bytes"));
}

TEST_CASE("checkpoint: every committed fuzz input keeps the loader's contract", "[checkpoint][fuzz]") {
  const auto inputs = fuzz::committed_inputs("checkpoint");
  CAPTURE(loglinear::fuzz::fuzz_dir().string());
  REQUIRE(inputs.size() >= 10);  // tests/fuzz/regressions/checkpoint/ and corpus/checkpoint/ are committed
  for (const auto& [path, bytes] : inputs) {
    CAPTURE(path);
    CHECK_NOTHROW(fuzz::checkpoint_one_input(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  }
}
