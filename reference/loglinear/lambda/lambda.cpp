// The lambda interface's shape checks and reshapes, and the factory (lambda.hpp). Each mode's
// maps live in the file named after its key.
#include <loglinear/lambda/lambda.hpp>

#include <stdexcept>

namespace loglinear::lambda {

std::vector<std::string> lambda_names() { return {"fixed", "constant", "mlp_softplus", "mlp_softmax"}; }

template <class Scalar>
RowMatrix<Scalar> LevelWeights<Scalar>::forward(const RowMatrix<Scalar>& dl) {
  if (dl.cols() != H_ * L_) {
    throw std::invalid_argument("dl: expected " + std::to_string(H_ * L_) + " columns (H*L), got " +
                                std::to_string(dl.cols()));
  }
  rows_ = dl.rows();
  // One row per (token, head): [N*H, L]. Row-major storage makes this a free reshape.
  const RowMatrix<Scalar> lam = forward_rows(Eigen::Map<const RowMatrix<Scalar>>(dl.data(), rows_ * H_, L_));
  return Eigen::Map<const RowMatrix<Scalar>>(lam.data(), rows_, H_ * L_);
}

template <class Scalar>
RowMatrix<Scalar> LevelWeights<Scalar>::backward(const RowMatrix<Scalar>& dlam) {
  if (rows_ < 0 || dlam.rows() != rows_ || dlam.cols() != H_ * L_) {
    throw std::invalid_argument("dlam: expected shape [" + std::to_string(rows_) + "," + std::to_string(H_ * L_) +
                                "] of the last forward's lam, got [" + std::to_string(dlam.rows()) + "," +
                                std::to_string(dlam.cols()) + "]");
  }
  const RowMatrix<Scalar> ddl = backward_rows(Eigen::Map<const RowMatrix<Scalar>>(dlam.data(), rows_ * H_, L_));
  return Eigen::Map<const RowMatrix<Scalar>>(ddl.data(), rows_, H_ * L_);
}

template <class Scalar>
std::unique_ptr<LevelWeights<Scalar>> make_level_weights(const std::string& key, const LevelWeightsOptions& opt,
                                                          std::mt19937_64& rng) {
  if (opt.heads < 1) throw std::invalid_argument("heads: expected >= 1, got " + std::to_string(opt.heads));
  if (opt.levels < 1) throw std::invalid_argument("levels: expected >= 1, got " + std::to_string(opt.levels));
  if (key == "fixed") return make_fixed<Scalar>(opt);
  if (key == "constant") return make_constant<Scalar>(opt);
  if (key == "mlp_softplus") return make_mlp_softplus<Scalar>(opt, rng);
  if (key == "mlp_softmax") return make_mlp_softmax<Scalar>(opt, rng);
  std::string known;
  for (const auto& n : lambda_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("lambda: expected one of " + known + ", got \"" + key + "\"");
}

template class LevelWeights<float>;
template class LevelWeights<double>;
template std::unique_ptr<LevelWeights<float>> make_level_weights<float>(const std::string&,
                                                                        const LevelWeightsOptions&,
                                                                        std::mt19937_64&);
template std::unique_ptr<LevelWeights<double>> make_level_weights<double>(const std::string&,
                                                                          const LevelWeightsOptions&,
                                                                          std::mt19937_64&);

}  // namespace loglinear::lambda
