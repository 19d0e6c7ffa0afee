// The data feed of a run (data.hpp).
#include <loglinear/tasks/mqar.hpp>
#include <loglinear/tasks/selective_copy.hpp>
#include <loglinear/train/data.hpp>

#include <random>
#include <stdexcept>

namespace loglinear::train {
namespace {
// The generators name their own argument ("length: ..."); say which flag it came from.
template <class Fn>
auto flagged(const char* flag, Fn&& fn) {
  try {
    return fn();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(flag) + ": " + e.what());
  }
}
}  // namespace

TaskData::TaskData(const DataConfig& c) : cfg_(c) {
  if (c.batch < 1) throw std::invalid_argument("--batch: expected >= 1, got " + std::to_string(c.batch));
  if (c.task == "mqar") {
    vocab_ = 128;
    const tasks::MqarOptions train{c.length, c.pairs, vocab_}, longer{c.eval_len, c.pairs, vocab_};
    train_ = flagged("--length/--pairs", [&] { return tasks::make_mqar(train, c.train_size, c.seed); });
    val_ = tasks::make_mqar(train, c.val_size, c.seed + 1);
    if (c.eval_len) long_ = flagged("--eval-len", [&] { return tasks::make_mqar(longer, c.val_size, c.seed + 2); });
  } else if (c.task == "selective_copy") {
    vocab_ = tasks::SelectiveCopyVocab::size;
    const tasks::SelectiveCopyOptions train{c.length, c.copy_tokens}, longer{c.eval_len, c.copy_tokens};
    train_ = flagged("--length/--copy-tokens", [&] { return tasks::make_selective_copy(train, c.train_size, c.seed); });
    val_ = tasks::make_selective_copy(train, c.val_size, c.seed + 1);
    if (c.eval_len)
      long_ = flagged("--eval-len", [&] { return tasks::make_selective_copy(longer, c.val_size, c.seed + 2); });
  } else if (c.task == "lm") {
    vocab_ = tasks::CharCorpus::vocab;
    corpus_ = std::make_unique<tasks::CharCorpus>(tasks::CharCorpus::from_file(c.corpus));
    val_.data = flagged("--length", [&] { return corpus_->valid_windows(c.length, c.val_size); });
    if (c.eval_len) long_.data = flagged("--eval-len", [&] { return corpus_->valid_windows(c.eval_len, c.val_size); });
  } else {
    throw std::invalid_argument("--task: expected one of mqar, selective_copy, lm, got \"" + c.task + "\"");
  }
}

tasks::Batch TaskData::train_batch(long step) const {
  const std::uint64_t s = cfg_.seed * 1000003ULL + std::uint64_t(step);
  if (corpus_) return corpus_->sample_train(cfg_.batch, cfg_.length, s);
  std::mt19937_64 rng(s);
  std::uniform_int_distribution<Index> pick(0, train_.size() - 1);
  std::vector<Index> idx(static_cast<size_t>(cfg_.batch));
  for (auto& i : idx) i = pick(rng);
  return train_.gather(idx);
}

}  // namespace loglinear::train
