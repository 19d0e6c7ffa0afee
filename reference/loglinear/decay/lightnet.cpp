// lightnet decay (SPEC.md §14.2, LightNet via xmixers): a normalised running sum in log space,
// data- and position-dependent, no parameters. Forward and backward are O(T) scans per (b, h).
#include <loglinear/decay/decay.hpp>
#include <loglinear/decay/decay_checks.hpp>

#include <cmath>

namespace loglinear::decay {
namespace {

template <class Scalar>
class LightnetDecay final : public Decay<Scalar> {
 public:
  explicit LightnetDecay(const DecayOptions& opt) : Decay<Scalar>(opt), H_(opt.heads) {}
  std::string name() const override { return "lightnet"; }

  RowMatrix<Scalar> forward(const RowMatrix<Scalar>& u, Index B) override {
    detail::check_decay_shape("u", u, H_, -1, B);
    B_ = B;
    const Index T = u.rows() / B;
    g_.resize(u.rows(), H_);
    // z_{-1} = 0 (one extra logit 0), z_t = logaddexp(z_{t-1}, u_t), g_t = -softplus(u_t - z_{t-1}).
    for (Index b = 0; b < B; ++b)
      for (Index h = 0; h < H_; ++h) {
        Scalar z = 0;
        for (Index t = 0; t < T; ++t) {
          const Index n = b * T + t;
          g_(n, h) = -softplus(u(n, h) - z);
          z -= g_(n, h);
        }
      }
    return g_;
  }

  RowMatrix<Scalar> backward(const RowMatrix<Scalar>& dg) override {
    detail::check_decay_shape("dg", dg, H_, g_.rows());
    const Index T = dg.rows() / B_;
    RowMatrix<Scalar> du(dg.rows(), H_);
    // forward: g_t = z_{t-1} - z_t, so dL/dz_t = Z_t = dg_{t+1} - dg_t + a_{t+1} Z_{t+1}
    // (dz_{t+1}/dz_t = a_{t+1}), reverse with Z_T = 0; dz_t/du_t = exp(u_t - z_t) = 1 - a_t.
    for (Index b = 0; b < B_; ++b)
      for (Index h = 0; h < H_; ++h) {
        Scalar Z = 0, dg_next = 0, a_next = 0;
        for (Index t = T - 1; t >= 0; --t) {
          const Index n = b * T + t;
          Z = dg_next - dg(n, h) + a_next * Z;
          du(n, h) = -std::expm1(g_(n, h)) * Z;
          dg_next = dg(n, h);
          a_next = std::exp(g_(n, h));
        }
      }
    return du;
  }

 private:
  Index H_, B_ = 1;
  RowMatrix<Scalar> g_;
};

}  // namespace

template <class Scalar>
std::unique_ptr<Decay<Scalar>> make_lightnet(const DecayOptions& opt) {
  return std::make_unique<LightnetDecay<Scalar>>(opt);
}

template std::unique_ptr<Decay<float>> make_lightnet<float>(const DecayOptions&);
template std::unique_ptr<Decay<double>> make_lightnet<double>(const DecayOptions&);

}  // namespace loglinear::decay
