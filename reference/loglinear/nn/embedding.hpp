// Token embedding (SPEC.md §8: the first layer of the LM and of the toy task model), a
// forward/backward pair in the llm.c style: a row gather forward, a scatter-add backward.
// O(N d) both ways; no matmul. The LM (nn/lm.hpp) uses it for its input; its head is a plain
// linear layer (models/layers.hpp, untied weights).
/// \file
/// \brief Token embedding (SPEC.md §8)
/// \ingroup floor_nn
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cstdint>
#include <vector>

namespace loglinear::nn {

/// Embedding lookup: x[n] = table[tokens[n]] for every position n.
///
/// @param tokens [N] ids, each in [0, vocab); N = B*T rows ordered (b, t), t fastest.
/// @param table  [vocab, d], one row per id.
/// @return x [N, d]. Nothing is cached: the backward needs only the ids.
/// @throws std::invalid_argument "tokens: expected ids in [0, vocab), got <id> at <n>" for an id
///         out of range.
template <class Scalar>
RowMatrix<Scalar> embedding_forward(const std::vector<std::int32_t>& tokens, const RowMatrix<Scalar>& table);

/// Backward of embedding_forward: ADDS dx[n] into dtable[tokens[n]] for every n (an id that
/// occurs k times collects the sum of its k rows; ids that do not occur get nothing).
///
/// forward: x[n] = table[tokens[n]], hence dtable[v] += sum over n with tokens[n] = v of dx[n].
/// There is no input gradient: token ids are not differentiable.
/// @param tokens [N] the forward's ids; @param dx [N, d] d(loss)/d(x); @param dtable [vocab, d].
/// @throws std::invalid_argument "dx: ..." if dx is not [N, d] with d = dtable.cols(), and
///         "tokens: ..." as embedding_forward (checked against dtable's rows).
template <class Scalar>
void embedding_backward(const std::vector<std::int32_t>& tokens, const RowMatrix<Scalar>& dx,
                        RowMatrix<Scalar>& dtable);

}  // namespace loglinear::nn
