// Streaming Gated DeltaNet decoder (SPEC.md §6): B x H GdnFenwickHeadState objects stepped in
// lock step; gdn_recurrent.cpp steps the same objects over a whole sequence. Validation mirrors
// the Mamba-2 Decoder (decoder.cpp), plus beta_t.
#include <loglinear/attention/gdn_decoder.hpp>
#include <loglinear/core/checks.hpp>
#include <loglinear/core/fenwick.hpp>

#include <limits>

namespace loglinear {

template <class Scalar>
GdnDecoder<Scalar>::GdnDecoder(Index B, Index H, Index G, Index K, Index V)
    : B_(B), H_(H), G_(G), K_(K), V_(V) {
  if (B < 1 || H < 1 || G < 1 || K < 1 || V < 1) {
    throw std::invalid_argument("GdnDecoder: expected B, H, G, K, V >= 1, got B=" +
                                std::to_string(B) + " H=" + std::to_string(H) + " G=" +
                                std::to_string(G) + " K=" + std::to_string(K) + " V=" +
                                std::to_string(V));
  }
  if (H % G != 0) {
    throw std::invalid_argument("GdnDecoder: expected G to divide H = " + std::to_string(H) +
                                ", got G = " + std::to_string(G));
  }
  const Index streams = checked_product("GdnDecoder: B x H streams", {B, H});
  check_allocation("GdnDecoder: B x H = " + std::to_string(streams) + " streams", streams,
                   Index(sizeof(GdnFenwickHeadState<Scalar>)));
  check_allocation("GdnDecoder: one K x V level of B x H streams",
                   checked_product("GdnDecoder: B x H x K x V", {B, H, K, V}), sizeof(Scalar));
  heads_.assign(streams, GdnFenwickHeadState<Scalar>(K, V));
}

template <class Scalar>
GdnDecoder<Scalar>::GdnDecoder(const FenwickState<Scalar>& state, Index G)
    : GdnDecoder(state.S.dim(0), state.S.dim(1), G, state.S.dim(3), state.S.dim(4)) {
  if (state.tokens < 0) {
    throw std::invalid_argument("state.tokens: expected >= 0, got " + std::to_string(state.tokens));
  }
  const Index L0 = state.tokens == 0 ? 0 : num_levels(state.tokens);
  check_shape<5>("state.S", state.S.shape(), {B_, H_, L0, K_, V_},
                 " = [B,H,num_levels(tokens),K,V]");
  check_finite<Scalar, 5>("state.S", state.S.view());
  tokens_ = state.tokens;
  for (Index b = 0; b < B_; ++b)
    for (Index h = 0; h < H_; ++h) heads_[b * H_ + h].assign(tokens_, head_levels(state.S, b, h));
}

template <class Scalar>
void GdnDecoder<Scalar>::step(ConstTensorView<Scalar, 3> q_t, ConstTensorView<Scalar, 3> k_t,
                              ConstTensorView<Scalar, 3> v_t, ConstTensorView<Scalar, 2> g_t,
                              ConstTensorView<Scalar, 2> beta_t, ConstTensorView<Scalar, 3> lam_t,
                              TensorView<Scalar, 3> o_t) {
  if (tokens_ == std::numeric_limits<Index>::max()) {
    throw std::invalid_argument("GdnDecoder: the stream already holds 2^63 - 1 tokens");
  }
  const int levels = num_levels(tokens_ + 1);
  check_shape<3>("q_t", q_t.shape, {B_, G_, K_}, " = [B,G,K]");
  check_shape<3>("k_t", k_t.shape, {B_, G_, K_}, " = [B,G,K]");
  check_shape<3>("v_t", v_t.shape, {B_, H_, V_}, " = [B,H,V]");
  check_shape<2>("g_t", g_t.shape, {B_, H_}, " = [B,H]");
  check_shape<2>("beta_t", beta_t.shape, {B_, H_}, " = [B,H]");
  if (lam_t.shape[0] != B_ || lam_t.shape[1] != H_ || lam_t.shape[2] < levels) {
    throw std::invalid_argument("lam_t: expected shape [B,H,L] = [" + std::to_string(B_) + "," +
                                std::to_string(H_) + ",L] with L >= num_levels(" +
                                std::to_string(tokens_ + 1) + ") = " + std::to_string(levels) +
                                ", got " + shape_string<3>(lam_t.shape));
  }
  check_shape<3>("o_t", o_t.shape, {B_, H_, V_}, " = [B,H,V]");
  check_finite<Scalar, 3>("q_t", q_t);
  check_finite<Scalar, 3>("k_t", k_t);
  check_finite<Scalar, 3>("v_t", v_t);
  check_finite<Scalar, 2>("g_t", g_t);
  check_finite<Scalar, 2>("beta_t", beta_t);
  check_finite<Scalar, 3>("lam_t", lam_t);
  for (Index i = 0; i < g_t.size(); ++i) {
    if (g_t.data[i] > 0) {
      throw std::invalid_argument("g_t: expected log-decay values <= 0, got " +
                                  std::to_string(g_t.data[i]));
    }
  }
  for (Index i = 0; i < beta_t.size(); ++i) {
    if (beta_t.data[i] < 0 || beta_t.data[i] > 1) {
      throw std::invalid_argument("beta_t: expected values in [0, 1], got " +
                                  std::to_string(beta_t.data[i]));
    }
  }
  if (tokens_ == 0 || levels > num_levels(tokens_))
    check_allocation("GdnDecoder: the state of B x H streams at " + std::to_string(levels) + " levels",
                     checked_product("GdnDecoder: B x H x levels x K x V", {B_, H_, levels, K_, V_}),
                     sizeof(Scalar));
  using ConstVec = Eigen::Map<const Vector<Scalar>>;
  const Index L = lam_t.shape[2];
  for (Index b = 0; b < B_; ++b) {
    for (Index h = 0; h < H_; ++h) {
      const Index gr = h / (H_ / G_);
      auto& head = heads_[b * H_ + h];
      head.step(ConstVec(&k_t(b, gr, 0), K_), ConstVec(&v_t(b, h, 0), V_), g_t(b, h), beta_t(b, h));
      Eigen::Map<Vector<Scalar>>(&o_t(b, h, 0), V_) =
          head.read(ConstVec(&q_t(b, gr, 0), K_), ConstVec(&lam_t(b, h, 0), L));
    }
  }
  ++tokens_;
}

template <class Scalar>
FenwickState<Scalar> GdnDecoder<Scalar>::state() const {
  FenwickState<Scalar> out;
  out.tokens = tokens_;
  const Index L0 = tokens_ == 0 ? 0 : num_levels(tokens_);
  out.S = Tensor<Scalar, 5>({B_, H_, L0, K_, V_});
  for (Index b = 0; b < B_; ++b)
    for (Index h = 0; h < H_; ++h) set_head_levels(out.S, b, h, heads_[b * H_ + h].S());
  return out;
}

template class GdnDecoder<float>;
template class GdnDecoder<double>;

}  // namespace loglinear
