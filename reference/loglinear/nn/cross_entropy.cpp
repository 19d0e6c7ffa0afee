// Softmax cross-entropy with the label mask (cross_entropy.hpp).
#include <loglinear/nn/cross_entropy.hpp>

#include <cmath>

namespace loglinear::nn {

template <class Scalar>
double cross_entropy(const RowMatrix<Scalar>& logits, const std::int32_t* targets,
                     RowMatrix<Scalar>* dlogits, Index* correct) {
  const Index N = logits.rows();
  Index scored = 0;
  for (Index n = 0; n < N; ++n) scored += targets[n] >= 0;
  if (dlogits) dlogits->setZero(N, logits.cols());
  if (correct) *correct = 0;
  if (scored == 0) return 0;
  double loss = 0;
  for (Index n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    Index argmax = 0;
    const Scalar mx = logits.row(n).maxCoeff(&argmax);
    // log-sum-exp shifted by the max, so no exp overflows.
    const auto e = (logits.row(n).array() - mx).exp().eval();
    const Scalar sum = e.sum();
    loss += double(std::log(sum) + mx - logits(n, targets[n]));
    if (correct && argmax == targets[n]) ++*correct;
    if (dlogits) {
      // d(mean CE)/dlogits = (softmax - onehot) / scored.
      dlogits->row(n) = e / (sum * Scalar(scored));
      (*dlogits)(n, targets[n]) -= Scalar(1) / Scalar(scored);
    }
  }
  return loss / double(scored);
}

template double cross_entropy<float>(const RowMatrix<float>&, const std::int32_t*, RowMatrix<float>*, Index*);
template double cross_entropy<double>(const RowMatrix<double>&, const std::int32_t*, RowMatrix<double>*, Index*);

}  // namespace loglinear::nn
