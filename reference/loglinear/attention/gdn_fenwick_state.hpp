// The Fenwick-tree state of one (batch, head) stream of log-linear Gated DeltaNet (SPEC.md §6):
// the Mamba-2 cascade of §4 (fenwick_state.hpp) with the delta-rule transition
// S[l] = a_t (I - beta_t k_t k_t^T) S[l] at every level. Stepped by gdn_recurrent.cpp (whole
// sequences, and its backward's replays) and by GdnDecoder (one token at a time).
/// \file
/// \brief The Fenwick-tree state of one Gated DeltaNet stream (SPEC.md §6)
/// \ingroup floor_operator
#pragma once

#include <loglinear/core/tensor.hpp>

#include <cmath>
#include <vector>

namespace loglinear {

/// The per-level K x V states of one Gated DeltaNet stream.
///
/// A token's step is split into its four parts (cascade, transition, insert, read) because the
/// backward needs the state between the cascade and the transition. After step t:
/// S[l] = sum_{s in B_l(t)} exp(G_t - G_s) beta_s (I - beta_t k_t k_t^T) ... (I - beta_{s+1}
/// k_{s+1} k_{s+1}^T) k_s v_s^T. Memory O(L K V); time per token O(L K V).
template <class Scalar>
class GdnFenwickHeadState {
 public:
  /// Empty state for keys of size K and values of size V.
  /// @param K key / state size  @param V value size
  GdnFenwickHeadState(Index K, Index V) : K_(K), V_(V) {}

  /// Part 1 of a step, as FenwickHeadState::insert: a full level (2^l tokens) spills into the
  /// next like a binary carry; the first level appears at token 0.
  /// @return the level merged into (0: none), SPEC.md §4.1's m_t.
  int cascade() {
    int merged = 0;
    for (size_t l = 0; l < S_.size() && n_[l] == (Index{1} << l); ++l) {
      if (l + 1 == S_.size()) {
        S_.push_back(RowMatrix<Scalar>::Zero(K_, V_));
        n_.push_back(0);
      }
      S_[l + 1] += S_[l];
      n_[l + 1] += n_[l];
      S_[l].setZero();
      n_[l] = 0;
      merged = static_cast<int>(l + 1);
    }
    if (S_.empty()) {
      S_.push_back(RowMatrix<Scalar>::Zero(K_, V_));
      n_.push_back(0);
    }
    return merged;
  }

  /// Part 2: S[l] = a_t (S[l] - beta_t k_t (k_t^T S[l])) for every level, a rank-one update
  /// (O(K V)) rather than a K x K product. Level 0 is empty after the cascade and is skipped.
  /// @param k_t [K] key  @param beta_t write strength  @param a_t decay exp(g_t)
  template <class KVec>
  void transition(const KVec& k_t, Scalar beta_t, Scalar a_t) {
    for (size_t l = 1; l < S_.size(); ++l) {
      const Vector<Scalar> kS = S_[l].transpose() * k_t;  // k_t^T S[l], as a V vector
      S_[l].noalias() -= (beta_t * k_t) * kS.transpose();
      S_[l] *= a_t;
    }
  }

  /// Part 3: S[0] = beta_t k_t v_t^T, after the transition, so token t is neither erased nor
  /// decayed by itself.
  /// @param k_t [K] key  @param v_t [V] value  @param beta_t write strength
  template <class KVec, class VVec>
  void insert(const KVec& k_t, const VVec& v_t, Scalar beta_t) {
    S_[0].noalias() = (beta_t * k_t) * v_t.transpose();
    n_[0] = 1;
    ++t_;
  }

  /// Parts 1-3 for token tokens(): cascade, transition by a_t = exp(g_t), insert.
  /// @param k_t [K] key  @param v_t [V] value  @param g_t log-decay (<= 0)
  /// @param beta_t write strength in [0, 1]
  template <class KVec, class VVec>
  void step(const KVec& k_t, const VVec& v_t, Scalar g_t, Scalar beta_t) {
    cascade();
    transition(k_t, beta_t, std::exp(g_t));
    insert(k_t, v_t, beta_t);
  }

  /// Part 4: o_t = sum_l lam_t[l] S[l]^T q_t over the live levels.
  /// @param q_t [K] query  @param lam_t [>= levels()] level weights
  /// @return o_t [V]
  template <class QVec, class LamVec>
  Vector<Scalar> read(const QVec& q_t, const LamVec& lam_t) const {
    Vector<Scalar> o_t = Vector<Scalar>::Zero(V_);
    for (int l = 0; l < levels(); ++l) o_t.noalias() += lam_t(l) * (S_[l].transpose() * q_t);
    return o_t;
  }

  /// Replaces the state by exported level slices (resume), as FenwickHeadState::assign.
  /// @param tokens tokens consumed  @param levels the K x V states, one per level
  void assign(Index tokens, std::vector<RowMatrix<Scalar>> levels) {
    t_ = tokens;
    S_ = std::move(levels);
    n_.assign(S_.size(), 0);
    if (tokens > 0) {
      n_[0] = 1;
      for (size_t l = 1; l < S_.size(); ++l)
        n_[l] = ((tokens - 1) >> (l - 1) & 1) ? (Index{1} << (l - 1)) : 0;
    }
  }

  Index tokens() const { return t_; }                          ///< tokens consumed so far
  int levels() const { return static_cast<int>(S_.size()); }   ///< live state slots
  const RowMatrix<Scalar>& S(int l) const { return S_[l]; }    ///< state of level l, K x V
  const std::vector<RowMatrix<Scalar>>& S() const { return S_; }  ///< every level's state

 private:
  Index K_, V_;
  Index t_ = 0;
  std::vector<RowMatrix<Scalar>> S_;  // S_[l]: K x V state of level l
  std::vector<Index> n_;              // n_[l]: tokens held by level l
};

}  // namespace loglinear
