// train/device: the CPU device is always there and builds a working model and optimiser; unknown
// devices, and cuda in a build that did not register it, are refused with a message that says
// what to do.
#include <loglinear/core/fenwick.hpp>
#include <loglinear/train/device.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>

using namespace loglinear;
using namespace loglinear::train;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("device: cpu builds the model make_model builds, and an optimiser that steps", "[train][device]") {
  const Device& cpu = find_device("cpu");
  CHECK(cpu.name == "cpu");
  CHECK_THAT(cpu.describe(), ContainsSubstring("OpenMP threads"));
  ModelConfig cfg;
  cfg.d_model = 8;
  cfg.mlp_hidden = 4;
  auto a = cpu.make_model(cfg, 12, num_levels(16), 3);
  auto b = make_model(cfg, 12, num_levels(16), 3);
  REQUIRE(a->params().size() == b->params().size());
  for (size_t i = 0; i < a->params().size(); ++i) CHECK(a->params()[i]->value == b->params()[i]->value);
  auto opt = cpu.make_optimizer(*a, 0.0);
  for (auto* p : a->params()) p->grad.setConstant(1.0f);
  opt->clip_grad_norm(1e9);
  opt->step(1e-2);
  CHECK(opt->steps() == 1);
  CHECK(a->params()[0]->value != b->params()[0]->value);
  CHECK(opt->moments(0).size() == a->params().size());
  CHECK_THROWS_WITH(opt->set_moments(1, {}), ContainsSubstring("moments: expected"));
}

TEST_CASE("device: unknown names are refused, naming the known devices", "[train][device]") {
  CHECK_THROWS_WITH(find_device("tpu"), ContainsSubstring("--device: expected one of cpu"));
  const auto names = device_names();
  CHECK(names.front() == "cpu");
  if (std::find(names.begin(), names.end(), "cuda") == names.end()) {
    // A build or program that did not register the CUDA backend says how to get it.
    CHECK_THROWS_WITH(find_device("cuda"), ContainsSubstring("-DLOGLINEAR_CUDA=ON"));
  } else {
    CHECK(find_device("cuda").name == "cuda");
  }
}
