// Batch and Dataset helpers shared by every task (see task.hpp).
#include <loglinear/tasks/task.hpp>

#include <algorithm>
#include <stdexcept>

namespace loglinear::tasks {

void check_dataset_size(Index count, Index length) {
  if (count < 1) throw std::invalid_argument("count: expected >= 1, got " + std::to_string(count));
  if (length < 1 || length > kMaxDatasetTokens) {
    throw std::invalid_argument("length: expected 1 <= length <= 2^28 = " + std::to_string(kMaxDatasetTokens) +
                                ", got " + std::to_string(length));
  }
  if (count > kMaxDatasetTokens / length) {
    throw std::invalid_argument("count: expected count * length <= 2^28 = " + std::to_string(kMaxDatasetTokens) +
                                " tokens, got " + std::to_string(count) + " * " + std::to_string(length));
  }
}

Index Batch::scored() const {
  return std::count_if(targets.values().begin(), targets.values().end(),
                       [](std::int32_t t) { return t != kIgnore; });
}

Batch Dataset::gather(const std::vector<Index>& indices) const {
  const Index T = length();
  Batch out{Tensor<std::int32_t, 2>({Index(indices.size()), T}),
            Tensor<std::int32_t, 2>({Index(indices.size()), T})};
  for (size_t i = 0; i < indices.size(); ++i) {
    const Index n = indices[i];
    if (n < 0 || n >= size()) {
      throw std::invalid_argument("indices: expected values in [0, " + std::to_string(size()) +
                                  "), got " + std::to_string(n));
    }
    std::copy_n(&data.tokens(n, 0), T, &out.tokens(Index(i), 0));
    std::copy_n(&data.targets(n, 0), T, &out.targets(Index(i), 0));
  }
  return out;
}

Batch Dataset::range(Index begin, Index end) const {
  if (begin < 0 || end > size() || begin >= end) {
    throw std::invalid_argument("range: expected 0 <= begin < end <= " + std::to_string(size()) +
                                ", got [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
  }
  std::vector<Index> idx;
  for (Index n = begin; n < end; ++n) idx.push_back(n);
  return gather(idx);
}

}  // namespace loglinear::tasks
