// Stages of the chunked Gated DeltaNet form for one (batch, head), SPEC.md §6 (see
// gdn_chunked_stages.hpp), forward and backward. Equation numbers (28)-(35) refer to
// docs/backward.md §4; (19)-(24) are the naive form's, applied to one diagonal block.
#include <loglinear/attention/gdn_chunked_stages.hpp>
#include <loglinear/attention/gdn_naive.hpp>

#include <cmath>

namespace loglinear {

template <class Scalar>
GdnChunkBlock<Scalar> gdn_chunk_block(const GdnHeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                                      const ChunkLayout& lay, Index z) {
  GdnChunkBlock<Scalar> blk;
  blk.r0 = lay.begin(z);
  blk.n = lay.end(z) - blk.r0;
  const Index r0 = blk.r0, n = blk.n;
  const auto q = x.q.middleRows(r0, n), k = x.k.middleRows(r0, n);
  // SPEC.md §6: Akk_ij = beta_i (k_i . k_j) for i > j, Tut = (I + Akk)^{-1} (no decay inside).
  RowMatrix<Scalar> Akk = (k * k.transpose()).template triangularView<Eigen::StrictlyLower>();
  Akk = x.beta.segment(r0, n).asDiagonal() * Akk;
  blk.Tut = unit_lower_inverse<Scalar>(Akk);
  // Exponents gamma_i - gamma_j <= 0 on and below the diagonal; the upper triangle is never
  // exponentiated (SPEC.md §10).
  blk.D = RowMatrix<Scalar>::Zero(n, n);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j <= i; ++j) blk.D(i, j) = std::exp(gamma(r0 + i) - gamma(r0 + j));
  blk.S = (q * k.transpose()).template triangularView<Eigen::Lower>();
  return blk;
}

namespace {

// H^loc ⊙ D^loc of one block: lam_i[LUT[i][j]] exp(gamma_i - gamma_j) for j <= i (SPEC.md §5
// Stage 1; chunks start at multiples of C, so local and absolute levels agree).
template <class Scalar>
RowMatrix<Scalar> block_mask(const GdnHeadInputs<Scalar>& x, const GdnChunkBlock<Scalar>& blk,
                             const ChunkLayout& lay, const std::vector<int>& lut) {
  RowMatrix<Scalar> Wm = RowMatrix<Scalar>::Zero(blk.n, blk.n);
  for (Index i = 0; i < blk.n; ++i)
    for (Index j = 0; j <= i; ++j) Wm(i, j) = x.lam(blk.r0 + i, lut[i * lay.C + j]) * blk.D(i, j);
  return Wm;
}

}  // namespace

template <class Scalar>
void gdn_stage1_intra_forward(const GdnHeadInputs<Scalar>& x, const GdnChunkBlock<Scalar>& blk,
                              const ChunkLayout& lay, const std::vector<int>& lut,
                              MatrixMap<Scalar> o) {
  const Index r0 = blk.r0, n = blk.n;
  // SPEC.md §6's materialised form on the block: M = [tril(Q K^T) Tut] ⊙ W^loc, o = M diag(beta) V.
  RowMatrix<Scalar> M = blk.S * blk.Tut;
  M.array() *= block_mask(x, blk, lay, lut).array();
  o.middleRows(r0, n).noalias() = M * (x.beta.segment(r0, n).asDiagonal() * x.v.middleRows(r0, n));
}

template <class Scalar>
void gdn_stage2_chunk_summary(const GdnHeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                              const GdnChunkBlock<Scalar>& blk, const ChunkLayout& lay,
                              GdnChunkSummaries<Scalar>& sums) {
  const Index r0 = blk.r0, n = blk.n, z = r0 / lay.C;
  const auto q = x.q.middleRows(r0, n), k = x.k.middleRows(r0, n);
  const auto beta = x.beta.segment(r0, n);
  // SPEC.md §6: W = Tut diag(beta) K. By forward substitution, w_i = beta_i (k_i - sum_{j<i}
  // (k_i . k_j) w_j), hence (I - beta_i k_i k_i^T) ... (I - beta_0 k_0 k_0^T) = I - sum_{j<=i} k_j w_j^T.
  auto W = sums.W.middleRows(r0, n);
  W.noalias() = blk.Tut * (beta.asDiagonal() * k);
  // q~_i = exp(gamma_i) (q_i - sum_{j<=i} (q_i . k_j) w_j): q_i^T times the chunk's transitions
  // up to and including row i (SPEC.md §6's state-facing query).
  const Vector<Scalar> e_gamma = gamma.segment(r0, n).array().exp().matrix();
  sums.Qt.middleRows(r0, n).noalias() = e_gamma.asDiagonal() * (q - blk.S * W);
  // U = Tut~ diag(beta) V with Tut~ = (I + D ⊙ Akk)^{-1} = Tut ⊙ D (eq. 28): u_i is what row i
  // adds to the chunk's intra state beyond the decayed and erased earlier rows.
  const RowMatrix<Scalar> U =
      blk.Tut.cwiseProduct(blk.D) * (beta.asDiagonal() * x.v.middleRows(r0, n));
  // Ubar_z = sum_j exp(Gamma_z - gamma_j) k_j u_j^T: the chunk's writes, carried to its end.
  const Vector<Scalar> f = (gamma(r0 + n - 1) - gamma.segment(r0, n).array()).exp().matrix();
  sums.Ubar[z - lay.z_first].noalias() = k.transpose() * f.asDiagonal() * U;
}

template <class Scalar>
std::vector<RowMatrix<Scalar>> gdn_stage3_level_states(const GdnHeadInputs<Scalar>& x,
                                                       const GdnChunkSummaries<Scalar>& sums,
                                                       const Vector<Scalar>& gamma,
                                                       const ChunkLayout& lay, int e) {
  const Index K = x.k.cols(), V = x.v.cols();
  std::vector<RowMatrix<Scalar>> Hin;
  RowMatrix<Scalar> H = RowMatrix<Scalar>::Zero(K, V), WH(0, V);
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0;
    Hin.push_back(H);
    if (is_reset(z, e)) {
      H.setZero();  // the period's last reader: its state is read by no later chunk
    } else {
      // SPEC.md §6: H = exp(Gamma_z) (H - K_z^T (W_z H)), the chunk's transitions in WY form.
      WH.noalias() = sums.W.middleRows(r0, n) * H;
      H.noalias() -= x.k.middleRows(r0, n).transpose() * WH;
      H *= std::exp(gamma(r0 + n - 1));
    }
    if (is_writer(z, e)) H += sums.Ubar[z - lay.z_first];
  }
  return Hin;
}

template <class Scalar>
void gdn_stage4_level_output(const GdnHeadInputs<Scalar>& x, const GdnChunkSummaries<Scalar>& sums,
                             const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                             int e, MatrixMap<Scalar> o) {
  const int l = lay.c + 1 + e;
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    if (!is_reader(z, e)) continue;
    const Index r0 = lay.begin(z), n = lay.end(z) - r0;
    // SPEC.md §6 reader: o_t += lam_t[c+1+e] q~_t^T Hin[e][z].
    o.middleRows(r0, n).noalias() += x.lam.col(l).segment(r0, n).asDiagonal() *
                                     (sums.Qt.middleRows(r0, n) * Hin[z - lay.z_first]);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward stages (docs/backward.md §4, eqs. 28-35). All of them add into their outputs.

template <class Scalar>
void gdn_stage34_level_backward(const GdnHeadInputs<Scalar>& x, const GdnChunkSummaries<Scalar>& sums,
                                const Vector<Scalar>& gamma,
                                const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                                int e, const ConstMatrixMap<Scalar>& dout,
                                GdnChunkSummaries<Scalar>& dsums, GdnHeadGrads<Scalar>& gr) {
  const int l = lay.c + 1 + e;
  const Index K = x.k.cols(), V = x.v.cols();
  RowMatrix<Scalar> dH = RowMatrix<Scalar>::Zero(K, V), dHin(K, V), KdH(0, V), WH(0, V);
  for (Index z = lay.z_last; z >= lay.z_first; --z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0, zi = z - lay.z_first;
    const auto k = x.k.middleRows(r0, n);
    // eq. 30: dH is the gradient of the state leaving chunk z; a writer added Ubar_z to it.
    if (is_writer(z, e)) dsums.Ubar[zi] += dH;
    if (is_reset(z, e)) {
      dHin.setZero();  // eq. 30: the state leaving a reset chunk does not depend on Hin
    } else {
      // eq. 31, forward H_out = exp(Gamma_z) (Hin - K^T (W Hin)) (+ Ubar_z).
      const Scalar a = std::exp(gamma(r0 + n - 1));
      KdH.noalias() = k * dH;                        // K dH_out, n x V
      WH.noalias() = sums.W.middleRows(r0, n) * Hin[zi];  // W Hin, n x V
      dsums.W.middleRows(r0, n).noalias() -= a * (KdH * Hin[zi].transpose());
      gr.dk.middleRows(r0, n).noalias() -= a * (WH * dH.transpose());
      dHin = dH;
      dHin.noalias() -= sums.W.middleRows(r0, n).transpose() * KdH;
      dHin *= a;
    }
    if (is_reader(z, e)) {
      // eq. 29, forward o_t += lam_t[l] q~_t^T Hin: Y = dout Hin^T serves dq~ and dlam.
      const auto dout_z = dout.middleRows(r0, n);
      const auto Qt = sums.Qt.middleRows(r0, n);
      const auto lam_l = x.lam.col(l).segment(r0, n);
      const RowMatrix<Scalar> Y = dout_z * Hin[zi].transpose();
      dsums.Qt.middleRows(r0, n).noalias() += lam_l.asDiagonal() * Y;
      gr.dlam.col(l).segment(r0, n) += Qt.cwiseProduct(Y).rowwise().sum();
      dHin.noalias() += Qt.transpose() * (lam_l.asDiagonal() * dout_z);
    }
    dH.swap(dHin);
  }
}

template <class Scalar>
void gdn_stage12_chunk_backward(const GdnHeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                                const GdnChunkBlock<Scalar>& blk, const ChunkLayout& lay,
                                const std::vector<int>& lut, const GdnChunkSummaries<Scalar>& sums,
                                const GdnChunkSummaries<Scalar>& dsums,
                                const ConstMatrixMap<Scalar>& dout, GdnHeadGrads<Scalar>& gr) {
  const Index r0 = blk.r0, n = blk.n, z = r0 / lay.C;
  const auto q = x.q.middleRows(r0, n), k = x.k.middleRows(r0, n), v = x.v.middleRows(r0, n);
  const auto beta = x.beta.segment(r0, n);
  const auto dout_z = dout.middleRows(r0, n);
  const auto W = sums.W.middleRows(r0, n);
  const RowMatrix<Scalar>& Tut = blk.Tut;
  const RowMatrix<Scalar>& S = blk.S;
  auto dq = gr.dq.middleRows(r0, n);
  auto dk = gr.dk.middleRows(r0, n);
  auto dbeta = gr.dbeta.segment(r0, n);

  // Stage 1, recomputed: R = S Tut, M = R ⊙ (H^loc ⊙ D), vb = diag(beta) v.
  const RowMatrix<Scalar> Wm = block_mask(x, blk, lay, lut);
  const RowMatrix<Scalar> R = S * Tut;
  const RowMatrix<Scalar> vb = beta.asDiagonal() * v;
  const RowMatrix<Scalar> kb = beta.asDiagonal() * k;

  // eq. 19 on the block, o = M vb: dM = tril(dout vb^T), dvb = M^T dout.
  const RowMatrix<Scalar> dM = (dout_z * vb.transpose()).template triangularView<Eigen::Lower>();
  RowMatrix<Scalar> dvb = R.cwiseProduct(Wm).transpose() * dout_z;
  // eq. 20: dR = dM ⊙ W^loc; dlam_i[LUT[i][j]] += R_ij D_ij dM_ij (levels 0..c).
  const RowMatrix<Scalar> dR = dM.cwiseProduct(Wm);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j <= i; ++j)
      gr.dlam(r0 + i, lut[i * lay.C + j]) += R(i, j) * blk.D(i, j) * dM(i, j);
  // eq. 21: R = S Tut gives dS = tril(dR Tut^T) and the first part of dTut = S^T dR.
  RowMatrix<Scalar> dS = (dR * Tut.transpose()).template triangularView<Eigen::Lower>();
  RowMatrix<Scalar> dTut = S.transpose() * dR;

  // eq. 32, Qt = diag(exp(gamma)) (Q - S W): with P = diag(exp(gamma)) dQt,
  // dq += P, dS -= tril(P W^T), dW -= S^T P.
  const Vector<Scalar> e_gamma = gamma.segment(r0, n).array().exp().matrix();
  const RowMatrix<Scalar> P = e_gamma.asDiagonal() * dsums.Qt.middleRows(r0, n);
  dq += P;
  dS -= RowMatrix<Scalar>((P * W.transpose()).template triangularView<Eigen::Lower>());
  RowMatrix<Scalar> dW = dsums.W.middleRows(r0, n);
  dW.noalias() -= S.transpose() * P;
  // eq. 22: S = tril(Q K^T): dq += dS k, dk += dS^T q.
  dq.noalias() += dS * k;
  dk.noalias() += dS.transpose() * q;

  // eq. 33, Ubar = K^T diag(f) U with f_j = exp(Gamma_z - gamma_j):
  // dk += diag(f) U dUbar^T, dU = diag(f) K dUbar.
  const RowMatrix<Scalar>& dUbar = dsums.Ubar[z - lay.z_first];
  const RowMatrix<Scalar> Tt = Tut.cwiseProduct(blk.D);  // Tut~, eq. 28
  const RowMatrix<Scalar> U = Tt * vb;
  const Vector<Scalar> f = (gamma(r0 + n - 1) - gamma.segment(r0, n).array()).exp().matrix();
  dk.noalias() += f.asDiagonal() * (U * dUbar.transpose());
  const RowMatrix<Scalar> dU = f.asDiagonal() * (k * dUbar);
  // eq. 34, U = Tut~ vb and Tut~ = Tut ⊙ D: dTut += (dU vb^T) ⊙ D, dvb += Tut~^T dU.
  dTut += (dU * vb.transpose()).cwiseProduct(blk.D);
  dvb.noalias() += Tt.transpose() * dU;
  // eq. 35, W = Tut kb with kb = diag(beta) K: dTut += dW kb^T; dkb = Tut^T dW gives
  // dk += diag(beta) dkb and dbeta += rowsum(K ⊙ dkb).
  dTut.noalias() += dW * kb.transpose();
  const RowMatrix<Scalar> dkb = Tut.transpose() * dW;
  dk.noalias() += beta.asDiagonal() * dkb;
  dbeta += k.cwiseProduct(dkb).rowwise().sum();
  // eq. 19 (end), vb = diag(beta) v: dv = diag(beta) dvb, dbeta += rowsum(v ⊙ dvb).
  gr.dv.middleRows(r0, n).noalias() += beta.asDiagonal() * dvb;
  dbeta += v.cwiseProduct(dvb).rowwise().sum();

  // eq. 23: the one backward of the chunk's UT inverse, with dTut summed over its three uses
  // (the block R, the WY factor W, and U through Tut~).
  const RowMatrix<Scalar> dA = unit_lower_inverse_backward(Tut, dTut);
  // eq. 24, Akk_ij = beta_i (k_i . k_j), i > j: dbeta += rowsum(dA ⊙ K K^T); dk += (E + E^T) K
  // with E = diag(beta) dA.
  dbeta += dA.cwiseProduct(k * k.transpose()).rowwise().sum();
  const RowMatrix<Scalar> E = beta.asDiagonal() * dA;
  dk.noalias() += (E + E.transpose()) * k;
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                           \
  template GdnChunkBlock<Scalar> gdn_chunk_block<Scalar>(                                       \
      const GdnHeadInputs<Scalar>&, const Vector<Scalar>&, const ChunkLayout&, Index);          \
  template void gdn_stage1_intra_forward<Scalar>(const GdnHeadInputs<Scalar>&,                  \
                                                 const GdnChunkBlock<Scalar>&, const ChunkLayout&, \
                                                 const std::vector<int>&, MatrixMap<Scalar>);   \
  template void gdn_stage2_chunk_summary<Scalar>(const GdnHeadInputs<Scalar>&,                  \
                                                 const Vector<Scalar>&, const GdnChunkBlock<Scalar>&, \
                                                 const ChunkLayout&, GdnChunkSummaries<Scalar>&); \
  template std::vector<RowMatrix<Scalar>> gdn_stage3_level_states<Scalar>(                      \
      const GdnHeadInputs<Scalar>&, const GdnChunkSummaries<Scalar>&, const Vector<Scalar>&,    \
      const ChunkLayout&, int);                                                                 \
  template void gdn_stage4_level_output<Scalar>(                                                \
      const GdnHeadInputs<Scalar>&, const GdnChunkSummaries<Scalar>&,                           \
      const std::vector<RowMatrix<Scalar>>&, const ChunkLayout&, int, MatrixMap<Scalar>);       \
  template void gdn_stage34_level_backward<Scalar>(                                             \
      const GdnHeadInputs<Scalar>&, const GdnChunkSummaries<Scalar>&, const Vector<Scalar>&,    \
      const std::vector<RowMatrix<Scalar>>&, const ChunkLayout&, int,                           \
      const ConstMatrixMap<Scalar>&, GdnChunkSummaries<Scalar>&, GdnHeadGrads<Scalar>&);        \
  template void gdn_stage12_chunk_backward<Scalar>(                                             \
      const GdnHeadInputs<Scalar>&, const Vector<Scalar>&, const GdnChunkBlock<Scalar>&,        \
      const ChunkLayout&, const std::vector<int>&, const GdnChunkSummaries<Scalar>&,            \
      const GdnChunkSummaries<Scalar>&, const ConstMatrixMap<Scalar>&, GdnHeadGrads<Scalar>&);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
