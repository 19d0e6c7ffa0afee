// The Fenwick-tree state of one (batch, head) stream and its merge cascade (SPEC.md §4): the
// object the recurrent form, the streaming decoder and the recurrent backward all step through.
// Set a breakpoint in FenwickHeadState::insert to watch levels merge as t counts in binary.
/// \file
/// \brief The Fenwick-tree state of one (batch, head) stream and its merge cascade (SPEC.md §4)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>

#include <vector>

namespace loglinear {

/// Exported Fenwick state of B x H streams after `tokens` tokens (for resuming a sequence).
///
/// `S` is [B,H,L,K,V] with L = num_levels(tokens) (empty when tokens == 0):
/// S[b,h,l] = sum over s in bucket B_l(tokens-1) of exp(G_{tokens-1} - G_s) k_s v_s^T.
/// The bucket sizes follow from `tokens` alone, so no counts are stored.
template <class Scalar>
struct FenwickState {
  Index tokens = 0;       ///< number of tokens already consumed (absolute position of the next)
  Tensor<Scalar, 5> S;    ///< per-level K x V states, [B,H,L,K,V]
};

/// The per-level states of one stream, stepped one token at a time (SPEC.md §4).
///
/// After `insert` of token t: S[l] = sum_{s in B_l(t)} exp(G_t - G_s) k_s v_s^T and
/// n[l] = |B_l(t)|. Memory O(L K V); time per token O(L K V).
template <class Scalar>
class FenwickHeadState {
 public:
  /// Empty state for keys of size K and values of size V.
  FenwickHeadState(Index K, Index V) : K_(K), V_(V) {}

  /// Step 1-3 of SPEC.md §4 for token t = tokens(): merge cascade, decay every level by
  /// a_t = exp(g_t), insert k_t v_t^T at level 0.
  /// @param k_t [K] key, @param v_t [V] value, @param g_t log-decay (<= 0).
  template <class KVec, class VVec>
  void insert(const KVec& k_t, const VVec& v_t, Scalar g_t);

  /// Step 4 of SPEC.md §4: o_t = sum_l lam_t[l] S[l]^T q_t, over the live levels.
  /// @param q_t [K] query, @param lam_t [>= levels()] level weights; returns o_t [V].
  template <class QVec, class LamVec>
  Vector<Scalar> read(const QVec& q_t, const LamVec& lam_t) const;

  /// Replaces the state by level slices taken from an exported state (resume).
  /// @param tokens tokens consumed; @param levels the K x V states, one per level.
  void assign(Index tokens, std::vector<RowMatrix<Scalar>> levels);

  Index tokens() const { return t_; }                      ///< tokens consumed so far
  int levels() const { return static_cast<int>(S_.size()); }  ///< live state slots
  const RowMatrix<Scalar>& S(int l) const { return S_[l]; }   ///< state of level l, K x V
  const std::vector<RowMatrix<Scalar>>& S() const { return S_; }  ///< every level's state
  /// Level into which levels 0..m-1 were merged by the last insert (0: no merge), SPEC.md §4.1.
  int last_merge() const { return last_merge_; }

 private:
  Index K_, V_;
  Index t_ = 0;
  int last_merge_ = 0;
  std::vector<RowMatrix<Scalar>> S_;  // S_[l]: K x V state of level l
  std::vector<Index> n_;              // n_[l]: tokens held by level l
};

// ---- implementation (templated on the Eigen expression types of the token vectors) ----

template <class Scalar>
template <class KVec, class VVec>
void FenwickHeadState<Scalar>::insert(const KVec& k_t, const VVec& v_t, Scalar g_t) {
  // 1. Cascade: a full level (2^l tokens) spills into the next, like a binary carry.
  last_merge_ = 0;
  for (size_t l = 0; l < S_.size() && n_[l] == (Index{1} << l); ++l) {
    if (l + 1 == S_.size()) {
      S_.push_back(RowMatrix<Scalar>::Zero(K_, V_));
      n_.push_back(0);
    }
    S_[l + 1] += S_[l];
    n_[l + 1] += n_[l];
    S_[l].setZero();
    n_[l] = 0;
    last_merge_ = static_cast<int>(l + 1);
  }
  // 2. Decay every level by a_t: their weights exp(G_{t-1} - G_s) become exp(G_t - G_s).
  const Scalar a_t = std::exp(g_t);
  for (auto& S_l : S_) S_l *= a_t;
  // 3. Insert after the decay, so token t carries D_tt = 1.
  if (S_.empty()) {
    S_.push_back(RowMatrix<Scalar>::Zero(K_, V_));
    n_.push_back(0);
  }
  S_[0].noalias() = k_t * v_t.transpose();
  n_[0] = 1;
  ++t_;
}

template <class Scalar>
template <class QVec, class LamVec>
Vector<Scalar> FenwickHeadState<Scalar>::read(const QVec& q_t, const LamVec& lam_t) const {
  Vector<Scalar> o_t = Vector<Scalar>::Zero(V_);
  for (int l = 0; l < levels(); ++l) o_t.noalias() += lam_t(l) * (S_[l].transpose() * q_t);
  return o_t;
}

template <class Scalar>
void FenwickHeadState<Scalar>::assign(Index tokens, std::vector<RowMatrix<Scalar>> levels) {
  t_ = tokens;
  last_merge_ = 0;
  S_ = std::move(levels);
  // Bucket sizes of the prefix [0, tokens-1]: |B_0| = 1, |B_l| = 2^(l-1) * bit_{l-1}(tokens-1).
  n_.assign(S_.size(), 0);
  if (tokens > 0) {
    n_[0] = 1;
    for (size_t l = 1; l < S_.size(); ++l)
      n_[l] = ((tokens - 1) >> (l - 1) & 1) ? (Index{1} << (l - 1)) : 0;
  }
}

/// The K x V level states of stream (b, h) of a [B,H,L,K,V] tensor (an exported state, or the
/// gradient arriving at one), copied out: what FenwickHeadState::assign takes to resume.
template <class Scalar>
std::vector<RowMatrix<Scalar>> head_levels(const Tensor<Scalar, 5>& S, Index b, Index h) {
  std::vector<RowMatrix<Scalar>> out;
  const auto& s = S.shape();
  for (Index l = 0; l < s[2]; ++l) out.push_back(Eigen::Map<const RowMatrix<Scalar>>(&S(b, h, l, 0, 0), s[3], s[4]));
  return out;
}
/// head_levels of an exported state's S; empty when there is no state (`st` null).
template <class Scalar>
std::vector<RowMatrix<Scalar>> head_levels(const FenwickState<Scalar>* st, Index b, Index h) {
  return st == nullptr ? std::vector<RowMatrix<Scalar>>{} : head_levels(st->S, b, h);
}

/// Writes `levels` (K x V each) into stream (b, h) of S, already shaped [B,H,>= levels.size(),K,V]
/// (the inverse of head_levels).
template <class Scalar>
void set_head_levels(Tensor<Scalar, 5>& S, Index b, Index h, const std::vector<RowMatrix<Scalar>>& levels) {
  for (size_t l = 0; l < levels.size(); ++l)
    Eigen::Map<RowMatrix<Scalar>>(&S(b, h, Index(l), 0, 0), levels[l].rows(), levels[l].cols()) = levels[l];
}

}  // namespace loglinear
