// train/checkpoint: task models round-trip through files; truncated, bit-flipped and mismatched
// files are rejected with messages; first-version files still load; the architecture entry tells
// apart decays with the same tensors. Then the loader on hostile bytes: the inputs that broke it or
// sit on its limits, as named cases, and a replay of every committed libFuzzer input
// (tests/fuzz/regressions/checkpoint/, tests/fuzz/corpus/checkpoint/) through the fuzz harness, so
// the gcc suite covers them without clang.
#include "fuzz/checkpoint_harness.hpp"

#include <loglinear/nn/task_model.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/train/checkpoint.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;
using loglinear::fuzz::checkpoint_value_count;
using loglinear::fuzz::encode_checkpoint;
using loglinear::fuzz::FuzzModel;
using Catch::Matchers::StartsWith;

TEST_CASE("checkpoint: checkpoints round-trip and reject truncated, corrupt or mismatched files",
          "[checkpoint]") {
  const std::string path = "loglinear_test_checkpoint.bin";
  TaskModel<float> a({16, 8, 2, 1, 4, 8, 4, "mlp_softplus", Form::chunked}, 1);
  TaskModel<float> b({16, 8, 2, 1, 4, 8, 4, "mlp_softplus", Form::chunked}, 2);
  const auto ds = tasks::make_mqar({8, 2, 16}, 3, 5);
  save_checkpoint(path, a.params());
  CHECK(a.forward(ds.data) != b.forward(ds.data));
  load_checkpoint(path, b.params());
  CHECK(a.forward(ds.data) == b.forward(ds.data));
  // Truncated: every prefix of the file is rejected with a message, the model left untouched.
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t(0), size_t(5), size_t(12), bytes.size() / 2, bytes.size() - 1}) {
    CAPTURE(cut);
    std::ofstream(path + ".cut", std::ios::binary).write(bytes.data(), std::streamsize(cut));
    CHECK_THROWS_AS(load_checkpoint(path + ".cut", b.params()), std::runtime_error);
  }
  // One flipped bit anywhere (magic, header, a value, the end marker, the checksum) is rejected;
  // inside the values only the checksum can tell.
  for (size_t at : {size_t(3), size_t(10), bytes.size() / 2, bytes.size() - 12, bytes.size() - 1}) {
    CAPTURE(at);
    std::string flipped = bytes;
    flipped[at] = char(flipped[at] ^ 0x10);
    std::ofstream(path + ".cut", std::ios::binary).write(flipped.data(), std::streamsize(flipped.size()));
    // The checksum is checked before anything is parsed: corruption, never a "mismatch".
    CHECK_THROWS_AS(load_checkpoint(path + ".cut", b.params()), std::runtime_error);
  }
  {
    std::string flipped = bytes;
    flipped[bytes.size() / 2] = char(flipped[bytes.size() / 2] ^ 0x01);  // a value's lowest bits
    std::ofstream(path + ".cut", std::ios::binary).write(flipped.data(), std::streamsize(flipped.size()));
    CHECK_THROWS_WITH(load_checkpoint(path + ".cut", b.params()), ContainsSubstring("checksum mismatch"));
  }
  CHECK(a.forward(ds.data) == b.forward(ds.data));
  {
    // A first-version file ("LLCKPT01", no checksum after the end marker) still loads.
    std::string v1 = bytes.substr(0, bytes.size() - 8);
    v1.replace(0, 8, "LLCKPT01");
    std::ofstream(path + ".cut", std::ios::binary).write(v1.data(), std::streamsize(v1.size()));
    TaskModel<float> c({16, 8, 2, 1, 4, 8, 4, "mlp_softplus", Form::chunked}, 3);
    load_checkpoint(path + ".cut", c.params());
    CHECK(a.forward(ds.data) == c.forward(ds.data));
  }
  // Another architecture: a name/shape mismatch.
  TaskModel<float> wide({16, 16, 2, 1, 4, 8, 4, "mlp_softplus", Form::chunked}, 1);
  CHECK_THROWS_WITH(load_checkpoint(path, wide.params()), ContainsSubstring("expected embedding [16,16]"));
  TaskModel<float> other({16, 8, 2, 1, 4, 8, 4, "fixed", Form::chunked}, 1);
  CHECK_THROWS_AS(load_checkpoint(path, other.params()), std::invalid_argument);
  CHECK_THROWS_WITH(load_checkpoint("/nonexistent/x.bin", a.params()), ContainsSubstring("cannot open"));
  std::remove(path.c_str());
  std::remove((path + ".cut").c_str());
}

TEST_CASE("checkpoint: checkpoints carry the decay's tensors and a file of another decay is rejected",
          "[checkpoint][decay]") {
  const std::string path = "loglinear_test_checkpoint_decay.bin";
  auto cfg = [](const std::string& key) {
    return TaskModelConfig{16, 8, 2, 2, 4, 8, 4, "mlp_softplus", Form::chunked, key};
  };
  const auto ds = tasks::make_mqar({8, 2, 16}, 3, 5);
  for (const std::string key : {"gla", "hgrn2", "tnl_l", "simple_decay"}) {
    CAPTURE(key);
    TaskModel<float> a(cfg(key), 1), b(cfg(key), 2);
    // Move the decay tensors off their (seed-independent) init so that the round trip shows.
    for (auto* p : a.params()) p->value.array() += 0.1f;
    save_checkpoint(path, a.params(), a.architecture());
    CHECK(a.forward(ds.data) != b.forward(ds.data));
    load_checkpoint(path, b.params(), b.architecture());
    CHECK(a.forward(ds.data) == b.forward(ds.data));
  }
  // gla and lightnet have the same tensors: only the architecture entry tells them apart.
  TaskModel<float> gla(cfg("gla"), 1), lightnet(cfg("lightnet"), 1), mamba2(cfg("mamba2"), 1);
  save_checkpoint(path, gla.params(), gla.architecture());
  CHECK_THROWS_WITH(load_checkpoint(path, lightnet.params(), lightnet.architecture()),
                    ContainsSubstring("written by the model \"task_model lambda=mlp_softplus decay=gla\", "
                                      "this model is \"task_model lambda=mlp_softplus decay=lightnet\""));
  CHECK_THROWS_AS(load_checkpoint(path, mamba2.params(), mamba2.architecture()), std::invalid_argument);
  // A file without the entry (as written before it existed) is judged by names and shapes.
  save_checkpoint(path, mamba2.params());
  TaskModel<float> other(cfg("mamba2"), 3);
  load_checkpoint(path, other.params(), other.architecture());
  CHECK(mamba2.forward(ds.data) == other.forward(ds.data));
  CHECK_THROWS_WITH(load_checkpoint(path, gla.params(), gla.architecture()),
                    ContainsSubstring("expected 28 parameters, the file has 32"));
  std::remove(path.c_str());
}

// --- Hostile bytes (issue 11).

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
