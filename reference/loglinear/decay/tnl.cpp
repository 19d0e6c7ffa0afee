// tnl decay (SPEC.md §14.2, TransNormerLLM via xmixers): static per-head rates that fall with
// depth; data-independent, nothing to learn, O(N H) to broadcast.
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include <cmath>
#include <stdexcept>

namespace loglinear::decay {
namespace {

template <class Scalar>
class TnlDecay final : public Decay<Scalar> {
 public:
  explicit TnlDecay(const DecayOptions& opt) : Decay<Scalar>(opt), H_(opt.heads), rate_(1, opt.heads) {
    if (opt.heads < 2)
      throw std::invalid_argument("heads: tnl expects >= 2 (its rates divide by H - 1), got " +
                                  std::to_string(opt.heads));
    if (opt.num_layers < 2)
      throw std::invalid_argument("num_layers: tnl expects >= 2 (it divides by L - 1), got " +
                                  std::to_string(opt.num_layers));
    if (opt.layer < 0 || opt.layer >= opt.num_layers)
      throw std::invalid_argument("layer: expected in [0, " + std::to_string(opt.num_layers) + "), got " +
                                  std::to_string(opt.layer));
    // g_h = s_h (1 - l/(L-1) + 1e-5), s_h = -1/n_h, n_h = 2 * 128^(h/(H-1)); 0-based layers keep g < 0.
    for (Index h = 0; h < H_; ++h) rate_(0, h) = Scalar(detail::tnl_rate(h, H_, opt.layer, opt.num_layers));
  }
  std::string name() const override { return "tnl"; }
  bool data_dependent() const override { return false; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    rows_ = u.rows();
    return rate_.replicate(rows_, 1);
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, rows_);
    // g does not depend on u and has no parameters.
    return RowMatrix<Scalar>::Zero(dg.rows(), H_);
  }

 private:
  Index H_, rows_ = 0;
  RowMatrix<Scalar> rate_;  // [1, H]
};

}  // namespace

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_tnl(const DecayOptions& opt) {
  return std::make_unique<TnlDecay<Scalar>>(opt);
}

template std::unique_ptr<Decay<float>> make_tnl<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_tnl<double>(const DecayOptions&);

}  // namespace loglinear::decay
