// train/checkpoint: task models round-trip through files; truncated, bit-flipped and mismatched
// files are rejected with messages; first-version files still load; the architecture entry tells
// apart decays with the same tensors.
#include <loglinear/nn/task_model.hpp>
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/train/checkpoint.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>

using namespace loglinear;
using namespace loglinear::nn;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;

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

