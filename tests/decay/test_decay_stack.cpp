// decay/decay_stack: one decay per layer for every key (layer i is make_decay's decay for layer i
// of L, prefixed "layers.<i>.", seeded seed + i), hgrn2's shared table Gamma [layers, H] with its
// lower bounds at init and its gradient through forward() / the layers / backward() against
// central differences in double, and the error messages.
#include <loglinear/decay/decay_stack.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace loglinear;
using namespace loglinear::decay;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::StartsWith;
using Mat = RowMatrix<double>;

TEST_CASE("decay_stack: every key gives `layers` decays, layer i as make_decay builds it for layer i",
          "[decay][decay_stack][property]") {
  const std::string key = GENERATE(from_range(decay_names()));
  const Index layers = 3, H = 2, B = 2, T = 5;  // tnl needs H >= 2 and layers >= 2
  CAPTURE(key, layers, H);
  DecayOptions opt;
  opt.heads = H;
  opt.seed = 11;
  auto stack = make_decay_stack<double>(key, opt, layers);
  REQUIRE(stack->size() == layers);
  CHECK(stack->name() == key);
  CHECK(stack->shared_params().size() == (key == "hgrn2" ? 1u : 0u));
  stack->forward();  // hgrn2: sets each layer's lower bound from Gamma; a no-op for the others
  const Mat u = random_matrix(B * T, H, 12, 2.0);
  std::vector<Mat> g(layers);
  for (Index i = 0; i < layers; ++i) {
    CAPTURE(i);
    Decay<double>& d = stack->layer(i);
    CHECK(d.name() == key);
    CHECK(d.data_dependent() == stack->data_dependent());
    const std::string prefix = "layers." + std::to_string(i) + ".";
    for (auto* p : d.params()) CHECK_THAT(p->name, StartsWith(prefix));
    g[size_t(i)] = d.forward(u, B);
    if (key == "hgrn2") continue;  // its layers differ by the lower bound from Gamma (next cases)
    // The options make_decay_stack documents: layer = i, num_layers = layers, seed + i, the prefix.
    DecayOptions o = opt;
    o.layer = i;
    o.num_layers = layers;
    o.seed = opt.seed + std::uint64_t(i);
    o.prefix = prefix;
    auto single = make_decay<double>(key, o);
    CHECK(g[size_t(i)] == single->forward(u, B));  // the same decay: bit for bit
    REQUIRE(single->params().size() == d.params().size());
    for (size_t j = 0; j < d.params().size(); ++j) {
      CHECK(d.params()[j]->name == single->params()[j]->name);
      CHECK(d.params()[j]->value == single->params()[j]->value);
    }
  }
  // Layers are distinct objects with their own parameters: the seeds (mamba2's dt_bias), the layer
  // index (tnl, tnl_l) or the lower bound (hgrn2) make their g differ.
  const bool same_every_layer = key == "gla" || key == "lightnet" || key == "simple_decay";
  CHECK((g[0] != g[2]) == !same_every_layer);
}

TEST_CASE("decay_stack: hgrn2 starts layer i at lower bound i/layers from its Gamma [layers, H] of ones",
          "[decay][decay_stack][hgrn2][init]") {
  const Index layers = GENERATE(1, 4), H = 3;
  CAPTURE(layers);
  DecayOptions opt;
  opt.heads = H;
  auto stack = make_decay_stack<double>("hgrn2", opt, layers);
  const auto shared = stack->shared_params();
  REQUIRE(shared.size() == 1);
  CHECK(shared[0]->name == "hgrn2.Gamma");
  CHECK(shared[0]->value.rows() == layers);
  CHECK(shared[0]->value.cols() == H);
  CHECK(shared[0]->value == Mat::Ones(layers, H));
  stack->forward();
  for (Index i = 0; i < layers; ++i) {
    // a = lb + (1 - lb) sigmoid(0) = lb + (1 - lb) / 2 with lb = i / layers (SPEC.md §14.2).
    const double lb = double(i) / double(layers), expect = lb + (1 - lb) / 2;
    const Mat a = stack->layer(i).forward(Mat::Zero(2, H), 1).array().exp();
    CAPTURE(i, lb);
    // 1e-15: a softmax of equal entries, a sum of i terms, log and exp of O(1) numbers.
    CHECK((a.array() - expect).abs().maxCoeff() <= 1e-15);
  }
}

TEST_CASE("decay_stack: hgrn2's dGamma through forward, the layers and backward, and each layer's du, "
          "match central differences", "[decay][decay_stack][hgrn2][fd]") {
  const Index layers = 3, H = 2, B = 2, T = 4;
  DecayOptions opt;
  opt.heads = H;
  auto stack = make_decay_stack<double>("hgrn2", opt, layers);
  Param<double>& Gamma = *stack->shared_params().at(0);
  Gamma.value = random_matrix(layers, H, 31, 0.7);  // off the all-ones init, so the softmax is not flat
  std::vector<Mat> u, w;
  for (Index i = 0; i < layers; ++i) {
    u.push_back(random_matrix(B * T, H, 40 + std::uint64_t(i), 2.0));
    w.push_back(random_matrix(B * T, H, 50 + std::uint64_t(i)));
  }
  // The loss a model sees: the stack's forward, then every layer; the gradient of sum_i <g_i, w_i>.
  auto loss = [&] {
    stack->forward();
    double acc = 0;
    for (Index i = 0; i < layers; ++i) acc += weighted_sum(stack->layer(i).forward(u[size_t(i)], B), w[size_t(i)]);
    return acc;
  };
  Gamma.grad.setZero();
  loss();
  std::vector<Mat> du;
  for (Index i = 0; i < layers; ++i) du.push_back(stack->layer(i).backward(w[size_t(i)]));
  stack->backward();
  const Mat dGamma = Gamma.grad;
  // 1e-6 (kFdTol, the bound): eps 1e-6 differences of an O(1) summed loss.
  CHECK_FD(gradcheck("dGamma", Gamma.value.data(), dGamma.data(), dGamma.size(), loss));
  for (Index i = 0; i < layers; ++i) {
    CAPTURE(i);
    // u_i reaches only layer i's term: differencing that term alone keeps the roundoff of the other
    // layers' terms out, and eps 1e-5 lowers it 10x more (truncation stays ~1e-10). A layer near
    // lb = 1 has du ~1e-4, where eps 1e-6 on the summed loss left ~5e-10 of noise (4e-6 relative).
    auto layer_loss = [&] {
      stack->forward();
      return weighted_sum(stack->layer(i).forward(u[size_t(i)], B), w[size_t(i)]);
    };
    CHECK_FD(gradcheck("du", u[size_t(i)].data(), du[size_t(i)].data(), du[size_t(i)].size(), layer_loss, 1e-5));
  }
  // backward() ADDS: one more step from the same point adds the same dGamma again.
  loss();
  for (Index i = 0; i < layers; ++i) stack->layer(i).backward(w[size_t(i)]);
  stack->backward();
  // 1e-14 relative: the same sums twice, then one addition.
  CHECK((Gamma.grad - 2 * dGamma).cwiseAbs().maxCoeff() <= 1e-14 * dGamma.cwiseAbs().maxCoeff());
}

TEST_CASE("decay_stack: a layer index out of range and layers < 1 throw std::invalid_argument",
          "[decay][decay_stack][errors]") {
  DecayOptions opt;
  opt.heads = 2;
  for (const std::string key : {"mamba2", "hgrn2"}) {
    CAPTURE(key);
    auto stack = make_decay_stack<double>(key, opt, 3);
    CHECK_THROWS_WITH(stack->layer(-1), ContainsSubstring("layer: expected 0 <= layer < 3, got -1"));
    CHECK_THROWS_WITH(stack->layer(3), ContainsSubstring("layer: expected 0 <= layer < 3, got 3"));
    CHECK_THROWS_WITH(make_decay_stack<double>(key, opt, 0), ContainsSubstring("layers: expected >= 1, got 0"));
  }
  CHECK_THROWS_WITH(make_decay_stack<double>("gru", opt, 2), ContainsSubstring("decay: expected one of mamba2"));
  CHECK_THROWS_AS(make_decay_stack<double>("gla", opt, -1), std::invalid_argument);
}
