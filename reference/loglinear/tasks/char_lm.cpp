// Byte-level LM corpus and windows (see char_lm.hpp).
#include <loglinear/tasks/char_lm.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace loglinear::tasks {

namespace {
std::string read_file(const std::string& path) {
  // Only a regular file: a FIFO or a device (/dev/zero) would be read forever.
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error("corpus: cannot read \"" + path + "\" (not a regular file)");
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    throw std::runtime_error("corpus: cannot read \"" + path +
                             "\"; build it with `cmake --build build --target kjv_corpus` "
                             "(needs Debian's bible-kjv, installed by scripts/setup.sh)");
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Batch windows(const std::string& text, const std::vector<Index>& starts, Index length) {
  Batch b{Tensor<std::int32_t, 2>({Index(starts.size()), length}),
          Tensor<std::int32_t, 2>({Index(starts.size()), length})};
  for (size_t i = 0; i < starts.size(); ++i)
    for (Index p = 0; p < length; ++p) {
      b.tokens(Index(i), p) = static_cast<unsigned char>(text[starts[i] + p]);
      b.targets(Index(i), p) = static_cast<unsigned char>(text[starts[i] + p + 1]);
    }
  return b;
}
}  // namespace

CharCorpus CharCorpus::from_file(const std::string& path, double valid_fraction) {
  return CharCorpus(read_file(path), valid_fraction);
}

CharCorpus::CharCorpus(std::string bytes, double valid_fraction) {
  if (!(valid_fraction > 0 && valid_fraction < 1)) {
    throw std::invalid_argument("valid_fraction: expected a value in (0, 1), got " +
                                std::to_string(valid_fraction));
  }
  const size_t split = static_cast<size_t>(double(bytes.size()) * (1 - valid_fraction));
  if (split < 2 || bytes.size() - split < 2) {
    throw std::invalid_argument("corpus: expected enough bytes for both splits, got " +
                                std::to_string(bytes.size()));
  }
  valid_ = bytes.substr(split);
  bytes.resize(split);
  train_ = std::move(bytes);
}

Batch CharCorpus::sample_train(Index count, Index length, std::uint64_t seed) const {
  // length < train_size(), not length + 1 <= train_size(): no overflow for any length.
  if (length < 1 || length >= train_size()) {
    throw std::invalid_argument("length: expected 1 <= length < " + std::to_string(train_size()) +
                                " (training bytes), got " + std::to_string(length));
  }
  check_dataset_size(count, length);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<Index> start(0, train_size() - length - 1);
  std::vector<Index> starts(static_cast<size_t>(count));
  for (auto& s : starts) s = start(rng);
  return windows(train_, starts, length);
}

Batch CharCorpus::valid_windows(Index length, Index max_windows) const {
  // Checked before the division below (length 0 divided by zero).
  if (length < 1 || length >= valid_size()) {
    throw std::invalid_argument("length: expected a window of 1.." + std::to_string(valid_size() - 1) +
                                " validation bytes, got " + std::to_string(length));
  }
  if (max_windows < 1) {
    throw std::invalid_argument("max_windows: expected >= 1, got " + std::to_string(max_windows));
  }
  const Index n = std::min(max_windows, (valid_size() - 1) / length);
  std::vector<Index> starts;
  for (Index i = 0; i < n; ++i) starts.push_back(i * length);
  return windows(valid_, starts, length);
}

double bits_per_byte(double nats_per_byte) { return nats_per_byte / std::log(2.0); }

}  // namespace loglinear::tasks
