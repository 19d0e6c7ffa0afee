// Forward stages of the chunked form for one (batch, head), SPEC.md §5 (see chunked_stages.hpp).
// Each stage is a plain loop over chunks with Eigen blocks, so the CUDA kernels
// (cuda/src/attention/chunked_fwd_ffma.cu, chunked_fwd_tc.cu) can be read side by side with it.
#include <loglinear/attention/chunked_stages.hpp>
#include <loglinear/core/fenwick.hpp>

#include <cmath>

namespace loglinear {

ChunkLayout::ChunkLayout(Index T_, Index t0_, Index C_) : T(T_), t0(t0_), C(C_) {
  c = bit_width(static_cast<std::uint64_t>(C)) - 1;
  levels = num_levels(t0 + T);
  z_first = t0 / C;
  z_last = (t0 + T - 1) / C;
}

Index bucket_representative(Index t_end, int m) {
  if (m == 0) return t_end;
  const Index h = Index{1} << (m - 1);
  if (!(t_end & h)) return -1;
  return (t_end & ~(h - 1)) - 1;  // last token of [t' - h, t')
}

template <class Scalar>
Vector<Scalar> chunk_local_cumsum(const ConstVectorMap<Scalar>& g, const ChunkLayout& lay) {
  Vector<Scalar> gamma(lay.T);
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    Scalar acc = 0;
    for (Index r = lay.begin(z); r < lay.end(z); ++r) gamma(r) = acc += g(r);
  }
  return gamma;
}

template <class Scalar>
void stage1_intra_forward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                          const ChunkLayout& lay, const std::vector<int>& lut,
                          MatrixMap<Scalar> o) {
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0, i0 = lay.offset(z);
    // A = (Q_z K_z^T) ⊙ D^loc ⊙ H^loc on the lower triangle; exponents gamma_i - gamma_j <= 0.
    RowMatrix<Scalar> A = x.q.middleRows(r0, n) * x.k.middleRows(r0, n).transpose();
    for (Index i = 0; i < n; ++i) {
      for (Index j = 0; j <= i; ++j) {
        const int l = lut[(i0 + i) * lay.C + (i0 + j)];
        A(i, j) *= x.lam(r0 + i, l) * std::exp(gamma(r0 + i) - gamma(r0 + j));
      }
      for (Index j = i + 1; j < n; ++j) A(i, j) = 0;
    }
    o.middleRows(r0, n).noalias() = A * x.v.middleRows(r0, n);
  }
}

template <class Scalar>
std::vector<RowMatrix<Scalar>> stage2_chunk_summaries(const HeadInputs<Scalar>& x,
                                                      const Vector<Scalar>& gamma,
                                                      const ChunkLayout& lay) {
  std::vector<RowMatrix<Scalar>> U;
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0;
    const Scalar Gamma = gamma(r0 + n - 1);
    // exp(Gamma_z - gamma_j) decays token j to the chunk's last live row.
    const Vector<Scalar> f = (Gamma - gamma.segment(r0, n).array()).exp().matrix();
    U.push_back(x.k.middleRows(r0, n).transpose() * f.asDiagonal() * x.v.middleRows(r0, n));
  }
  return U;
}

template <class Scalar>
std::vector<RowMatrix<Scalar>> stage3_level_states(const std::vector<RowMatrix<Scalar>>& U,
                                                   const Vector<Scalar>& gamma,
                                                   const ChunkLayout& lay, int e) {
  std::vector<RowMatrix<Scalar>> Hin;
  RowMatrix<Scalar> H = RowMatrix<Scalar>::Zero(U[0].rows(), U[0].cols());
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    Hin.push_back(H);
    // A period of 2^(e+1) chunks: writers (bit e = 0) then readers (bit e = 1); the state is
    // only ever read inside its own period, so it restarts after the period's last chunk.
    if (is_reset(z, e)) {
      H.setZero();
    } else {
      H *= std::exp(gamma(lay.end(z) - 1));  // exp(Gamma_z): decay across the whole chunk
    }
    if (is_writer(z, e)) H += U[z - lay.z_first];
  }
  return Hin;
}

template <class Scalar>
void stage4_level_output(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                         const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                         int e, MatrixMap<Scalar> o) {
  const int l = lay.c + 1 + e;
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    if (!is_reader(z, e)) continue;
    const Index r0 = lay.begin(z), n = lay.end(z) - r0;
    // Reader row i sees the state at its chunk's start, decayed by exp(gamma_i) up to itself.
    const Vector<Scalar> f =
        x.lam.col(l).segment(r0, n).cwiseProduct(gamma.segment(r0, n).array().exp().matrix());
    o.middleRows(r0, n).noalias() += f.asDiagonal() * (x.q.middleRows(r0, n) * Hin[z - lay.z_first]);
  }
}

template <class Scalar>
void initial_state_output(const HeadInputs<Scalar>& x, const std::vector<RowMatrix<Scalar>>& S0,
                          Index t0, MatrixMap<Scalar> o) {
  const Index T = x.q.rows();
  Scalar log_decay = 0;  // sum_{r=t0..t} g_r: the prefix state sits at t0-1
  for (Index r = 0; r < T; ++r) {
    log_decay += x.g(r);
    const Scalar decay = std::exp(log_decay);
    for (int m = 0; m < static_cast<int>(S0.size()); ++m) {
      const Index rep = bucket_representative(t0 - 1, m);
      if (rep < 0) continue;
      const int l = level(t0 + r, rep);
      o.row(r).noalias() += (x.lam(r, l) * decay) * (x.q.row(r) * S0[m]);
    }
  }
}

template <class Scalar>
std::vector<RowMatrix<Scalar>> final_state(const HeadInputs<Scalar>& x,
                                           const std::vector<RowMatrix<Scalar>>& S0, Index t0) {
  const Index T = x.q.rows(), tf = t0 + T - 1;
  std::vector<RowMatrix<Scalar>> S(num_levels(tf + 1),
                                   RowMatrix<Scalar>::Zero(x.k.cols(), x.v.cols()));
  // New tokens, walked backwards so that suffix = sum_{r=s+1..tf} g_r grows without cancellation.
  Scalar suffix = 0;
  for (Index r = T - 1; r >= 0; --r) {
    S[level(tf, t0 + r)].noalias() += std::exp(suffix) * x.k.row(r).transpose() * x.v.row(r);
    suffix += x.g(r);
  }
  // suffix is now the decay of the whole call: each initial bucket moves whole to one level.
  for (int m = 0; m < static_cast<int>(S0.size()); ++m) {
    const Index rep = bucket_representative(t0 - 1, m);
    if (rep >= 0) S[level(tf, rep)] += std::exp(suffix) * S0[m];
  }
  return S;
}


// ---------------------------------------------------------------------------------------------
// Backward stages (docs/backward.md §3). All of them add into their outputs.

template <class Scalar>
void stage1_intra_backward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                           const ChunkLayout& lay, const std::vector<int>& lut,
                           const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& gr) {
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0, i0 = lay.offset(z);
    const auto q = x.q.middleRows(r0, n), k = x.k.middleRows(r0, n), v = x.v.middleRows(r0, n);
    const auto dout_z = dout.middleRows(r0, n);
    const RowMatrix<Scalar> S = q * k.transpose();
    // Recompute D^loc (the decay part of W^loc); lam enters separately for dlam (eq. 5).
    RowMatrix<Scalar> D = RowMatrix<Scalar>::Zero(n, n), W = RowMatrix<Scalar>::Zero(n, n);
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j <= i; ++j) {
        D(i, j) = std::exp(gamma(r0 + i) - gamma(r0 + j));
        W(i, j) = x.lam(r0 + i, lut[(i0 + i) * lay.C + (i0 + j)]) * D(i, j);
      }
    // eq. 1: dM = dout v^T on the lower triangle; eq. 2: dv = M^T dout; eqs. 3-4: dS = dM ⊙ W.
    const RowMatrix<Scalar> dM = (dout_z * v.transpose()).template triangularView<Eigen::Lower>();
    gr.dv.middleRows(r0, n).noalias() += S.cwiseProduct(W).transpose() * dout_z;
    const RowMatrix<Scalar> dS = dM.cwiseProduct(W);
    gr.dq.middleRows(r0, n).noalias() += dS * k;
    gr.dk.middleRows(r0, n).noalias() += dS.transpose() * q;
    // eq. 5: dlam_t[l] += S_ts D_ts dM_ts for the pairs of level l.
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j <= i; ++j)
        gr.dlam(r0 + i, lut[(i0 + i) * lay.C + (i0 + j)]) += S(i, j) * D(i, j) * dM(i, j);
  }
}

template <class Scalar>
void stage34_level_backward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                            const std::vector<RowMatrix<Scalar>>& Hin, const ChunkLayout& lay,
                            int e, const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& gr,
                            std::vector<RowMatrix<Scalar>>& dU) {
  const int l = lay.c + 1 + e;
  RowMatrix<Scalar> dH = RowMatrix<Scalar>::Zero(x.k.cols(), x.v.cols());
  for (Index z = lay.z_last; z >= lay.z_first; --z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0;
    // eq. 14: dH is now the gradient of the state leaving chunk z; a writer added U_z to it.
    if (is_writer(z, e)) dU[z - lay.z_first] += dH;
    // eq. 16, forward H = reset ? 0 : exp(Gamma_z) H: nothing flows back across a reset.
    if (is_reset(z, e)) {
      dH.setZero();
    } else {
      dH *= std::exp(gamma(r0 + n - 1));
    }
    if (is_reader(z, e)) {
      // eqs. 17-18, forward o_i += lam_i[l] exp(gamma_i) Hin^T q_i. Y = dout Hin^T serves both
      // dq and dlam, so the forward product q Hin is never recomputed.
      const auto q = x.q.middleRows(r0, n);
      const auto dout_z = dout.middleRows(r0, n);
      const RowMatrix<Scalar> Y = dout_z * Hin[z - lay.z_first].transpose();
      const Vector<Scalar> decay = gamma.segment(r0, n).array().exp().matrix();
      const Vector<Scalar> f = x.lam.col(l).segment(r0, n).cwiseProduct(decay);
      gr.dq.middleRows(r0, n).noalias() += f.asDiagonal() * Y;
      gr.dlam.col(l).segment(r0, n) += decay.cwiseProduct(q.cwiseProduct(Y).rowwise().sum());
      dH.noalias() += q.transpose() * f.asDiagonal() * dout_z;
    }
  }
}

template <class Scalar>
void stage2_summaries_backward(const HeadInputs<Scalar>& x, const Vector<Scalar>& gamma,
                               const ChunkLayout& lay, const std::vector<RowMatrix<Scalar>>& dU,
                               HeadGrads<Scalar>& gr) {
  for (Index z = lay.z_first; z <= lay.z_last; ++z) {
    const Index r0 = lay.begin(z), n = lay.end(z) - r0;
    const RowMatrix<Scalar>& dU_z = dU[z - lay.z_first];
    // eq. 15, forward U_z = sum_j f_j k_j v_j^T with f_j = exp(Gamma_z - gamma_j).
    const Vector<Scalar> f = (gamma(r0 + n - 1) - gamma.segment(r0, n).array()).exp().matrix();
    gr.dk.middleRows(r0, n).noalias() += f.asDiagonal() * (x.v.middleRows(r0, n) * dU_z.transpose());
    gr.dv.middleRows(r0, n).noalias() += f.asDiagonal() * (x.k.middleRows(r0, n) * dU_z);
  }
}

template <class Scalar>
void initial_state_output_backward(const HeadInputs<Scalar>& x,
                                   const std::vector<RowMatrix<Scalar>>& S0, Index t0,
                                   const ConstMatrixMap<Scalar>& dout, HeadGrads<Scalar>& gr,
                                   std::vector<RowMatrix<Scalar>>& dS0) {
  const Index T = x.q.rows();
  Scalar log_decay = 0;
  for (Index r = 0; r < T; ++r) {
    log_decay += x.g(r);
    const Scalar decay = std::exp(log_decay);
    for (int m = 0; m < static_cast<int>(S0.size()); ++m) {
      const Index rep = bucket_representative(t0 - 1, m);
      if (rep < 0) continue;
      const int l = level(t0 + r, rep);
      // forward: o_r += lam_r[l] decay S0[m]^T q_r.
      const Vector<Scalar> Sd = S0[m] * dout.row(r).transpose();
      gr.dq.row(r).noalias() += (x.lam(r, l) * decay) * Sd.transpose();
      gr.dlam(r, l) += decay * x.q.row(r).dot(Sd);
      dS0[m].noalias() += (x.lam(r, l) * decay) * x.q.row(r).transpose() * dout.row(r);
    }
  }
}

template <class Scalar>
Scalar final_state_backward(const HeadInputs<Scalar>& x, const std::vector<RowMatrix<Scalar>>& S0,
                            Index t0, const std::vector<RowMatrix<Scalar>>& dF,
                            HeadGrads<Scalar>& gr, std::vector<RowMatrix<Scalar>>& dS0) {
  const Index T = x.q.rows(), tf = t0 + T - 1;
  // forward: S_l += exp(suffix_r) k_r v_r^T for the new tokens of bucket l.
  Scalar suffix = 0;
  for (Index r = T - 1; r >= 0; --r) {
    const RowMatrix<Scalar>& dF_l = dF[level(tf, t0 + r)];
    gr.dk.row(r).noalias() += std::exp(suffix) * (dF_l * x.v.row(r).transpose()).transpose();
    gr.dv.row(r).noalias() += std::exp(suffix) * (x.k.row(r) * dF_l);
    suffix += x.g(r);
  }
  for (int m = 0; m < static_cast<int>(S0.size()); ++m) {
    const Index rep = bucket_representative(t0 - 1, m);
    if (rep >= 0) dS0[m] += std::exp(suffix) * dF[level(tf, rep)];
  }
  // Every term of the final state carries exp(G_tf - G_s): its G_tf part has gradient
  // <dF, S_final>; the -G_s parts are the <v_s, dv_s> terms of the identity.
  const auto S = final_state(x, S0, t0);
  Scalar dG_last = 0;
  for (size_t l = 0; l < S.size(); ++l) dG_last += S[l].cwiseProduct(dF[l]).sum();
  return dG_last;
}

template <class Scalar>
void decay_gradient(const ConstMatrixMap<Scalar>& lam, const MatrixMap<Scalar>& dlam,
                    const ConstMatrixMap<Scalar>& v, const MatrixMap<Scalar>& dv, Scalar dG_last,
                    bool first_is_origin, VectorMap<Scalar> dg) {
  const Index T = v.rows();
  // eq. 10 with eq. 9's rho_t = sum_l lam_t[l] dlam_t[l]: g_t enters every G_u with u >= t.
  Scalar acc = dG_last;
  for (Index t = T - 1; t >= 0; --t) {
    acc += lam.row(t).dot(dlam.row(t)) - v.row(t).dot(dv.row(t));
    dg(t) = acc;
  }
  if (first_is_origin) dg(0) = 0;
}

#define LOGLINEAR_INSTANTIATE(Scalar)                                                          \
  template Vector<Scalar> chunk_local_cumsum<Scalar>(const ConstVectorMap<Scalar>&,            \
                                                     const ChunkLayout&);                      \
  template void stage1_intra_forward<Scalar>(const HeadInputs<Scalar>&, const Vector<Scalar>&, \
                                             const ChunkLayout&, const std::vector<int>&,      \
                                             MatrixMap<Scalar>);                               \
  template std::vector<RowMatrix<Scalar>> stage2_chunk_summaries<Scalar>(                      \
      const HeadInputs<Scalar>&, const Vector<Scalar>&, const ChunkLayout&);                   \
  template std::vector<RowMatrix<Scalar>> stage3_level_states<Scalar>(                         \
      const std::vector<RowMatrix<Scalar>>&, const Vector<Scalar>&, const ChunkLayout&, int);  \
  template void stage4_level_output<Scalar>(const HeadInputs<Scalar>&, const Vector<Scalar>&,  \
                                            const std::vector<RowMatrix<Scalar>>&,             \
                                            const ChunkLayout&, int, MatrixMap<Scalar>);       \
  template void initial_state_output<Scalar>(const HeadInputs<Scalar>&,                       \
                                             const std::vector<RowMatrix<Scalar>>&, Index,     \
                                             MatrixMap<Scalar>);                               \
  template std::vector<RowMatrix<Scalar>> final_state<Scalar>(                                 \
      const HeadInputs<Scalar>&, const std::vector<RowMatrix<Scalar>>&, Index);                \
  template void stage1_intra_backward<Scalar>(const HeadInputs<Scalar>&, const Vector<Scalar>&, \
                                              const ChunkLayout&, const std::vector<int>&,     \
                                              const ConstMatrixMap<Scalar>&, HeadGrads<Scalar>&); \
  template void stage34_level_backward<Scalar>(                                                \
      const HeadInputs<Scalar>&, const Vector<Scalar>&, const std::vector<RowMatrix<Scalar>>&, \
      const ChunkLayout&, int, const ConstMatrixMap<Scalar>&, HeadGrads<Scalar>&,              \
      std::vector<RowMatrix<Scalar>>&);                                                        \
  template void stage2_summaries_backward<Scalar>(                                             \
      const HeadInputs<Scalar>&, const Vector<Scalar>&, const ChunkLayout&,                    \
      const std::vector<RowMatrix<Scalar>>&, HeadGrads<Scalar>&);                              \
  template void initial_state_output_backward<Scalar>(                                         \
      const HeadInputs<Scalar>&, const std::vector<RowMatrix<Scalar>>&, Index,                 \
      const ConstMatrixMap<Scalar>&, HeadGrads<Scalar>&, std::vector<RowMatrix<Scalar>>&);     \
  template Scalar final_state_backward<Scalar>(                                                \
      const HeadInputs<Scalar>&, const std::vector<RowMatrix<Scalar>>&, Index,                 \
      const std::vector<RowMatrix<Scalar>>&, HeadGrads<Scalar>&, std::vector<RowMatrix<Scalar>>&); \
  template void decay_gradient<Scalar>(const ConstMatrixMap<Scalar>&, const MatrixMap<Scalar>&, \
                                       const ConstMatrixMap<Scalar>&, const MatrixMap<Scalar>&, \
                                       Scalar, bool, VectorMap<Scalar>);
LOGLINEAR_INSTANTIATE(float)
LOGLINEAR_INSTANTIATE(double)

}  // namespace loglinear
