// The synthetic-task model (reference/loglinear/models/): every layer, every lambda mode and the
// whole model's loss against central finite differences in double; init facts; training lowers
// the loss deterministically; checkpoints round-trip and reject bad files; every decay key of
// decay/ in the whole model's gradient check and in checkpoints.
#include <loglinear/decay/decay.hpp>
#include <loglinear/models/checkpoint.hpp>
#include <loglinear/models/layers.hpp>
#include <loglinear/models/level_weights.hpp>
#include <loglinear/models/optim.hpp>
#include <loglinear/models/task_model.hpp>
#include <loglinear/tasks/mqar.hpp>

#include "../support/gradcheck.hpp"
#include "../support/layer_checks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/generators/catch_generators_range.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <cstdio>
#include <fstream>

using namespace loglinear;
using namespace loglinear::models;
using namespace loglinear::test;
using Catch::Matchers::ContainsSubstring;
using Mat = RowMatrix<double>;

namespace {
// Sum of w ⊙ y: a loss whose gradient w.r.t. y is w.
double weighted(const Mat& y, const Mat& w) { return y.cwiseProduct(w).sum(); }
}  // namespace

TEST_CASE("models: LayerNorm backward matches finite differences", "[models][fd]") {
  Mat x = random_matrix(5, 7, 1), gamma = random_matrix(1, 7, 2), beta = random_matrix(1, 7, 3);
  const Mat w = random_matrix(5, 7, 4);
  LayerNormCache<double> cache;
  auto L = [&] { LayerNormCache<double> c; return weighted(layernorm_forward<double>(x, gamma, beta, c), w); };
  layernorm_forward<double>(x, gamma, beta, cache);
  Mat dgamma = Mat::Zero(1, 7), dbeta = Mat::Zero(1, 7);
  const Mat dx = layernorm_backward<double>(w, gamma, cache, dgamma, dbeta);
  for (const auto& r : {gradcheck("dx", x.data(), dx.data(), x.size(), L),
                        gradcheck("dgamma", gamma.data(), dgamma.data(), 7, L),
                        gradcheck("dbeta", beta.data(), dbeta.data(), 7, L)}) {
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("models: cross-entropy gradient matches finite differences and skips unscored rows",
          "[models][fd]") {
  Mat logits = random_matrix(6, 5, 7, 2.0);
  const std::int32_t targets[6] = {1, -1, 4, 0, -1, 2};
  Mat dlogits;
  Index correct = 0;
  cross_entropy<double>(logits, targets, &dlogits, &correct);
  auto L = [&] { return cross_entropy<double>(logits, targets, nullptr); };
  const auto r = gradcheck("dlogits", logits.data(), dlogits.data(), logits.size(), L);
  INFO(r.report());
  CHECK(r.max_rel <= 1e-6);
  CHECK(dlogits.row(1).isZero(0));
  CHECK(dlogits.row(4).isZero(0));
  // Uniform logits: the loss is log(vocab) exactly.
  const Mat flat = Mat::Zero(6, 5);
  CHECK(std::abs(cross_entropy<double>(flat, targets, nullptr) - std::log(5.0)) < 1e-14);
}

TEST_CASE("models: every lambda mode's backward matches finite differences", "[models][lambda][fd]") {
  const LambdaMode mode = GENERATE(LambdaMode::fixed, LambdaMode::constant, LambdaMode::mlp_softplus,
                                   LambdaMode::mlp_softmax);
  CAPTURE(lambda_mode_name(mode));
  std::mt19937_64 rng(3);
  LevelWeights<double> lw(mode, 2, 5, 6, rng, "");
  // Move W2 and the rest away from their init so that every path carries gradient.
  for (auto* p : lw.params()) p->value += random_matrix(p->value.rows(), p->value.cols(), 11, 0.3);
  Mat dl = random_matrix(4, 10, 5);
  const Mat w = random_matrix(4, 10, 6);
  auto L = [&] { return weighted(lw.forward(dl), w); };
  lw.forward(dl);
  const Mat ddl = lw.backward(w);
  if (mode != LambdaMode::constant) {
    const auto r = gradcheck("d(dl)", dl.data(), ddl.data(), dl.size(), L);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  } else {
    CHECK(ddl.isZero(0));  // data-independent
  }
  for (auto* p : lw.params()) {
    const auto r = gradcheck(p->name, p->value.data(), p->grad.data(), p->value.size(), L);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("models: lambda at initialisation is what the sources start from", "[models][lambda]") {
  std::mt19937_64 rng(1);
  const Mat dl = random_matrix(3, 2 * 8, 9);
  LevelWeights<double> sp(LambdaMode::mlp_softplus, 2, 8, 64, rng, "");
  const Mat lam_sp = sp.forward(dl);
  CHECK((lam_sp.array() - std::log1p(std::exp(0.54))).abs().maxCoeff() < 1e-15);
  CHECK(std::abs(lam_sp(0, 0) - 0.9992) < 1e-4);
  LevelWeights<double> sm(LambdaMode::mlp_softmax, 2, 8, 64, rng, "");
  CHECK((sm.forward(dl).array() - 1.0 / 8).abs().maxCoeff() < 1e-15);
  LevelWeights<double> c(LambdaMode::constant, 2, 8, 64, rng, "");
  CHECK((c.forward(dl).array() - 1.0).abs().maxCoeff() < 1e-14);
  LevelWeights<double> fx(LambdaMode::fixed, 2, 8, 64, rng, "");
  const Mat lam_fx = fx.forward(dl);
  CHECK(std::abs(lam_fx(1, 3) - std::log1p(std::exp(dl(1, 3)))) < 1e-15);  // Lp = 1
  CHECK_THROWS_WITH(parse_lambda_mode("adaptive"), ContainsSubstring("lambda: expected one of fixed"));
}

TEST_CASE("models: the whole model's loss gradient matches finite differences for every "
          "parameter tensor", "[models][fd]") {
  const LambdaMode mode = GENERATE(LambdaMode::fixed, LambdaMode::constant, LambdaMode::mlp_softplus,
                                   LambdaMode::mlp_softmax);
  const Form form = GENERATE(Form::chunked, Form::recurrent);
  CAPTURE(lambda_mode_name(mode), form_name(form));
  TaskModelConfig cfg{16, 8, 2, 2, 4, 5, 2, mode, form};
  TaskModel<double> model(cfg, 42);
  // Push the zero-initialised tensors off zero so every gradient path is exercised.
  for (auto* p : model.params()) p->value += random_matrix(p->value.rows(), p->value.cols(), 77, 0.2);
  const auto ds = tasks::make_mqar({8, 2, 16}, 2, 5);
  model.zero_grad();
  model.step(ds.data, true);
  auto L = [&] { return model.step(ds.data, false); };
  for (auto* p : model.params()) {
    const Mat analytic = p->grad;
    // eps = 1e-4: the loss is ~3 nats, so rounding in the difference is ~1e-16 * 3 / eps = 3e-12
    // absolute, below the smallest gradients here (~1e-6); truncation stays O(eps^2) relative.
    const auto r = gradcheck(p->name, p->value.data(), analytic.data(), p->value.size(), L, 1e-4, 12);
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
}

TEST_CASE("models: the whole model's loss gradient matches finite differences with every other "
          "decay parameterisation", "[models][decay][fd]") {
  // mamba2 is the case above; here every other key of the factory, with 2 heads (tnl needs them)
  // and 2 layers (hgrn2's lower-bound table then reaches its softmax).
  std::vector<std::string> keys;
  for (const auto& k : decay::decay_names())
    if (k != "mamba2") keys.push_back(k);
  const std::string key = GENERATE_COPY(from_range(keys));
  CAPTURE(key);
  TaskModelConfig cfg{16, 8, 2, 2, 4, 5, 2, LambdaMode::mlp_softplus, Form::chunked, key};
  TaskModel<double> model(cfg, 42);
  for (auto* p : model.params()) {
    p->value += random_matrix(p->value.rows(), p->value.cols(), 77, 0.2);
    // tnl_l starts the top layer at theta ~ -17 (a ~ 1), where dg/dtheta = -sigmoid(theta) ~ 1e-8
    // is below what differences of a ~3-nat loss resolve; O(1) values exercise the same formula.
    if (p->name.find("theta") != std::string::npos) p->value = random_matrix(p->value.rows(), p->value.cols(), 78);
  }
  const auto ds = tasks::make_mqar({8, 2, 16}, 2, 5);
  model.zero_grad();
  model.step(ds.data, true);
  auto L = [&] { return model.step(ds.data, false); };
  bool has_decay_param = false;
  for (auto* p : model.params()) {
    has_decay_param |= p->name.find("Wdt") != std::string::npos || p->name.find("theta") != std::string::npos ||
                       p->name.find("Delta") != std::string::npos || p->name == "hgrn2.Gamma";
    const Mat analytic = p->grad;
    // Three steps, the best counts (a wrong backward is off at every step): eps = 1e-5 keeps the
    // O(eps^2) truncation below 1e-6 on strongly curved entries (embedding, lm_head), eps = 1e-3
    // keeps rounding in the difference (~1e-16 |loss| / eps absolute) below the small gradients
    // of layer 0's decay projection (gla divides them by tau = 16), 1e-4 sits in between.
    GradCheck r;
    r.max_rel = 1e300;
    for (double eps : {1e-5, 1e-4, 1e-3}) {
      const auto re = gradcheck(p->name, p->value.data(), analytic.data(), p->value.size(), L, eps, 12);
      if (re.max_rel < r.max_rel) r = re;
    }
    INFO(r.report());
    CHECK(r.max_rel <= 1e-6);
  }
  // Every key but tnl carries a decay tensor whose gradient was just checked.
  CHECK(has_decay_param == (key != "tnl"));
}

TEST_CASE("models: the decay key decides the decay tensors; mamba2 keeps its old names",
          "[models][decay]") {
  auto names = [](const std::string& key) {
    TaskModel<float> m({16, 8, 1, 2, 4, 8, 4, LambdaMode::fixed, Form::chunked, key}, 1);
    std::vector<std::string> out;
    for (auto* p : m.params()) out.push_back(p->name);
    return out;
  };
  const std::vector<std::string> head = {"embedding", "norm_f.gamma", "norm_f.beta", "lm_head"};
  auto expect = [&](std::vector<std::string> decay_part) {
    std::vector<std::string> out = head;
    if (!decay_part.empty() && decay_part[0] == "hgrn2.Gamma") {
      out.push_back("hgrn2.Gamma");
      decay_part.erase(decay_part.begin());
    }
    for (const char* n : {"layers.0.Wq", "layers.0.Wk", "layers.0.Wv", "layers.0.Wdl"}) out.push_back(n);
    for (const auto& n : decay_part) out.push_back(n);
    for (const char* n : {"layers.0.Wo", "layers.0.norm.gamma", "layers.0.norm.beta", "layers.0.lambda.Lp"})
      out.push_back(n);
    return out;
  };
  CHECK(names("mamba2") == expect({"layers.0.Wdt", "layers.0.dt_bias", "layers.0.A_log"}));
  CHECK(names("gla") == expect({"layers.0.Wdt"}));
  CHECK(names("hgrn2") == expect({"hgrn2.Gamma", "layers.0.Wdt"}));
  CHECK(names("simple_decay") == expect({"layers.0.Wdt", "layers.0.Delta"}));
  CHECK(names("tnl_l") == expect({"layers.0.theta"}));
  TaskModel<float> gla({16, 8, 1, 2, 4, 8, 4, LambdaMode::fixed, Form::chunked, "gla"}, 1);
  CHECK(gla.architecture() == "task_model lambda=fixed decay=gla");
  CHECK_THROWS_WITH(TaskModel<float>({16, 8, 1, 2, 4, 8, 4, LambdaMode::fixed, Form::chunked, "gru"}, 1),
                    ContainsSubstring("decay: expected one of mamba2, gla, hgrn2, lightnet, tnl, tnl_l, "
                                      "simple_decay, got \"gru\""));
  CHECK_THROWS_WITH(TaskModel<float>({16, 8, 1, 1, 4, 8, 4, LambdaMode::fixed, Form::chunked, "tnl"}, 1),
                    ContainsSubstring("heads: tnl expects >= 2"));
}

TEST_CASE("models: 200 training steps lower the loss, bit-identically for the same seed",
          "[models][train]") {
  const LambdaMode mode = GENERATE(LambdaMode::fixed, LambdaMode::constant, LambdaMode::mlp_softplus,
                                   LambdaMode::mlp_softmax);
  CAPTURE(lambda_mode_name(mode));
  // A tiny MQAR: T = 16, 2 pairs, vocab 16; the untrained model is near log(16) = 2.77 nats.
  const auto ds = tasks::make_mqar({16, 2, 16}, 256, 1);
  auto train = [&](std::uint64_t seed) {
    TaskModel<float> model({16, 16, 1, 1, 5, 16, 4, mode, Form::chunked}, seed);
    Adam<float> opt(model.params());
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<Index> pick(0, ds.size() - 1);
    std::vector<double> losses;
    for (int step = 0; step < 200; ++step) {
      std::vector<Index> idx(32);
      for (auto& i : idx) i = pick(rng);
      model.zero_grad();
      losses.push_back(model.step(ds.gather(idx), true));
      clip_grad_norm(model.params(), 1.0);
      opt.step(3e-3);
    }
    return losses;
  };
  const auto a = train(7), b = train(7);
  CHECK(a == b);  // same seed, same data order, same threads: bit-identical
  const double first = (a[0] + a[1] + a[2] + a[3] + a[4]) / 5;
  const double last = (a[195] + a[196] + a[197] + a[198] + a[199]) / 5;
  CAPTURE(first, last);
  // The values of 2 pairs among 8 candidates are learnable from the context; a 25 % drop means
  // the model uses it (chance level stays at ~log(8) = 2.08 nats, 25 % below 2.77).
  CHECK(last < 0.75 * first);
}

TEST_CASE("models: checkpoints round-trip and reject truncated, corrupt or mismatched files",
          "[models][checkpoint]") {
  const std::string path = "loglinear_test_checkpoint.bin";
  TaskModel<float> a({16, 8, 2, 1, 4, 8, 4, LambdaMode::mlp_softplus, Form::chunked}, 1);
  TaskModel<float> b({16, 8, 2, 1, 4, 8, 4, LambdaMode::mlp_softplus, Form::chunked}, 2);
  const auto ds = tasks::make_mqar({8, 2, 16}, 3, 5);
  save_checkpoint(path, a.params());
  CHECK(a.step(ds.data, false) != b.step(ds.data, false));
  load_checkpoint(path, b.params());
  CHECK(a.step(ds.data, false) == b.step(ds.data, false));
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
  CHECK(a.step(ds.data, false) == b.step(ds.data, false));
  {
    // A first-version file ("LLCKPT01", no checksum after the end marker) still loads.
    std::string v1 = bytes.substr(0, bytes.size() - 8);
    v1.replace(0, 8, "LLCKPT01");
    std::ofstream(path + ".cut", std::ios::binary).write(v1.data(), std::streamsize(v1.size()));
    TaskModel<float> c({16, 8, 2, 1, 4, 8, 4, LambdaMode::mlp_softplus, Form::chunked}, 3);
    load_checkpoint(path + ".cut", c.params());
    CHECK(a.step(ds.data, false) == c.step(ds.data, false));
  }
  // Another architecture: a name/shape mismatch.
  TaskModel<float> wide({16, 16, 2, 1, 4, 8, 4, LambdaMode::mlp_softplus, Form::chunked}, 1);
  CHECK_THROWS_WITH(load_checkpoint(path, wide.params()), ContainsSubstring("expected embedding [16,16]"));
  TaskModel<float> other({16, 8, 2, 1, 4, 8, 4, LambdaMode::fixed, Form::chunked}, 1);
  CHECK_THROWS_AS(load_checkpoint(path, other.params()), std::invalid_argument);
  CHECK_THROWS_WITH(load_checkpoint("/nonexistent/x.bin", a.params()), ContainsSubstring("cannot open"));
  std::remove(path.c_str());
  std::remove((path + ".cut").c_str());
}

TEST_CASE("models: checkpoints carry the decay's tensors and a file of another decay is rejected",
          "[models][checkpoint][decay]") {
  const std::string path = "loglinear_test_checkpoint_decay.bin";
  auto cfg = [](const std::string& key) {
    return TaskModelConfig{16, 8, 2, 2, 4, 8, 4, LambdaMode::mlp_softplus, Form::chunked, key};
  };
  const auto ds = tasks::make_mqar({8, 2, 16}, 3, 5);
  for (const std::string key : {"gla", "hgrn2", "tnl_l", "simple_decay"}) {
    CAPTURE(key);
    TaskModel<float> a(cfg(key), 1), b(cfg(key), 2);
    // Move the decay tensors off their (seed-independent) init so that the round trip shows.
    for (auto* p : a.params()) p->value.array() += 0.1f;
    save_checkpoint(path, a.params(), a.architecture());
    CHECK(a.step(ds.data, false) != b.step(ds.data, false));
    load_checkpoint(path, b.params(), b.architecture());
    CHECK(a.step(ds.data, false) == b.step(ds.data, false));
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
  CHECK(mamba2.step(ds.data, false) == other.step(ds.data, false));
  CHECK_THROWS_WITH(load_checkpoint(path, gla.params(), gla.architecture()),
                    ContainsSubstring("expected 28 parameters, the file has 32"));
  std::remove(path.c_str());
}

TEST_CASE("models: bad configurations and batches are rejected", "[models][errors]") {
  CHECK_THROWS_WITH(TaskModel<float>({16, 10, 1, 3, 4, 8, 4}, 1), ContainsSubstring("d_model: expected a multiple of heads = 3"));
  TaskModel<float> m({16, 8, 1, 1, 3, 8, 4}, 1);
  const auto long_batch = tasks::make_mqar({16, 2, 16}, 1, 1);  // needs num_levels(16) = 5 > 3
  CHECK_THROWS_WITH(m.step(long_batch.data, false), ContainsSubstring("needs num_levels(T) = 5"));
  auto bad = tasks::make_mqar({4, 1, 16}, 1, 1);
  bad.data.tokens(0, 0) = 99;
  CHECK_THROWS_WITH(m.step(bad.data, false), ContainsSubstring("expected ids in [0, 16), got 99"));
}

TEST_CASE("models: the last forward's g and lambda per layer feed the diagnostics", "[models][diagnostics]") {
  TaskModel<double> m({16, 8, 2, 2, 4, 8, 4, LambdaMode::mlp_softplus, Form::chunked}, 1);
  const auto ds = tasks::make_mqar({8, 2, 16}, 3, 5);
  m.step(ds.data, false);
  const Index N = ds.data.tokens.dim(0) * ds.data.tokens.dim(1);
  for (Index layer = 0; layer < 2; ++layer) {
    CHECK(m.last_decay(layer).rows() == N);
    CHECK(m.last_decay(layer).cols() == 2);
    CHECK(m.last_lambda(layer).cols() == 2 * m.config().levels);
    CHECK((m.last_decay(layer).array() <= 0).all());
  }
  // lambda_of is a view of the same cache.
  CHECK(m.lambda_of(1, 0) == m.last_lambda(1).topRows(ds.data.tokens.dim(1)));
  CHECK_THROWS_WITH(m.last_decay(2), ContainsSubstring("layer: expected 0 <= layer < 2, got 2"));
  CHECK_THROWS_WITH(m.last_lambda(-1), ContainsSubstring("layer: expected 0 <= layer < 2, got -1"));
}
