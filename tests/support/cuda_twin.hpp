// One harness for every GPU-vs-CPU twin test (tests/cuda/<floor>/test_<layer>.cpp): skip without a
// GPU, move matrices to and from the device, and compare a GPU result with its CPU twin's through
// compare.hpp's normwise relative error, reporting the worst element.
//
// Tolerance: float32 on both sides, the same formulas; the two differ only in summation order
// (cuBLAS vs Eigen GEMM blocking, tree vs serial reductions) and in libm ulps (expf, erff, log1pf
// within 2 ulp). A sum of n float terms in another order differs by at most ~n eps |terms| in the
// worst case, and by ~sqrt(n) eps |terms| for the random inputs these tests draw (rounding errors
// of independent signs add like a random walk). The longest sums in these tests run over ~1300
// terms (conv1d's weight gradient, the lambda MLP's parameter gradients): sqrt(1300) eps ~ 4e-6,
// so kTwinTolerance = 1e-5 holds with margin for random data (measured worst: 7e-6), while any
// wrong index, missing term or wrong constant gives O(1e-2..1) errors. A test with longer sums or
// cancelling terms states its own tolerance.
#pragma once

#include <loglinear/cuda/core/context.hpp>
#include <loglinear/cuda/core/device_matrix.hpp>
#include <loglinear/cuda/core/param.hpp>
#include <loglinear/cuda/device.hpp>

#include "compare.hpp"
#include "require_gpu.hpp"

#include <catch2/catch_test_macros.hpp>

#include <random>
#include <string>
#include <vector>


namespace loglinear::test {

/// Normwise relative tolerance of a float32 GPU twin against its float32 CPU twin (see above).
inline constexpr double kTwinTolerance = 1e-5;

/// A [rows, cols] float matrix of N(0, scale^2) entries.
inline RowMatrix<float> random_matrix(Index rows, Index cols, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> n(0.0, scale);
  RowMatrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = float(n(rng));
  return m;
}

/// Checks that a device matrix equals its CPU twin's result: same shape, normwise relative error
/// <= tol (the report names the worst element).
inline void check_twin(const std::string& name, loglinear::cuda::Context& ctx, const loglinear::cuda::DeviceMatrix& gpu,
                       const RowMatrix<float>& cpu, double tol = kTwinTolerance) {
  INFO(name << ": gpu [" << gpu.rows() << ", " << gpu.cols() << "] vs cpu [" << cpu.rows() << ", " << cpu.cols() << "]");
  REQUIRE(gpu.rows() == cpu.rows());
  REQUIRE(gpu.cols() == cpu.cols());
  const RowMatrix<float> host = gpu.download(ctx.stream());
  const Comparison c = compare(name, host.data(), cpu.data(), cpu.size());
  INFO(c.report());
  CHECK(c.max_rel <= tol);
}

/// Moves every CPU parameter away from its initial value by N(0, scale^2) noise and gives every
/// gradient a random start, then copies both to the GPU twin's parameters (initial values such as
/// W2 = 0 or Lp = 1 would hide wrong indices in a backward; a random gradient start checks "adds").
/// Also checks that the twins agree on names and weight decay.
inline void perturb_twins(const std::vector<Param<float>*>& cpu, const std::vector<loglinear::cuda::DeviceParam*>& gpu,
                          loglinear::cuda::Context& ctx, std::mt19937_64& rng, double scale) {
  REQUIRE(cpu.size() == gpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    CHECK(gpu[i]->name == cpu[i]->name);
    CHECK(gpu[i]->weight_decay == cpu[i]->weight_decay);
    Param<float>& p = *cpu[i];
    p.value += random_matrix(p.value.rows(), p.value.cols(), rng, scale);
    p.grad = random_matrix(p.grad.rows(), p.grad.cols(), rng);
    gpu[i]->value.upload(p.value, ctx.stream());
    gpu[i]->grad.upload(p.grad, ctx.stream());
  }
  ctx.synchronize();
}

/// Every parameter gradient of a GPU model against its CPU twin's, name by name, within tol.
inline void check_param_grads(const std::vector<Param<float>*>& cpu, const std::vector<loglinear::cuda::DeviceParam*>& gpu,
                              loglinear::cuda::Context& ctx, double tol) {
  REQUIRE(cpu.size() == gpu.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    REQUIRE(gpu[i]->name == cpu[i]->name);
    check_twin(cpu[i]->name + ".grad", ctx, gpu[i]->grad, cpu[i]->grad, tol);
  }
}

}  // namespace loglinear::test
