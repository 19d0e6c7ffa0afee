#!/usr/bin/env bash
# The first lease after the carried-state, varlen and context-parallel GPU work (issues 15 and 17):
# one call that builds and runs everything that work added, so that a failure costs one call.
#  1. bench/gpu/lease_check.sh with LEASE_CHECK_QUICK=1: every [cuda] test (the stateful kernels
#     against the CPU in double, bf16 from chunk z0 > 0, split and continue, context parallelism
#     with the CUDA engine and over an NCCL group of one GPU) and memcheck over [cross] and [state];
#  2. bench/gpu/torch_check.sh: loglinear.torch on torch 2.11 / NumPy 2.5 (TestCudaState, the
#     packed-sequence test that failed under NumPy 2, the custom-op tests) and the op's overhead;
#  3. if mpirun exists there: tests/mpi/mpi_cuda_context_parallel with 1 and 2 ranks on the GPU.
# OUTDIR receives summary.txt (all three summaries) and the two scripts' archives.
# Usage (carry .devdeps, the full one: Catch2 and pybind11):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr bash bench/gpu/state_check.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/../.."
final=$1
sum="$final/summary.txt"
LEASE_CHECK_QUICK=1 bash bench/gpu/lease_check.sh "$final" > "$final/lease_check.out" 2>&1
{ echo "== lease_check (quick)"; cat "$final/summary.txt" 2>/dev/null; } > "$final/all.txt"
bash bench/gpu/torch_check.sh "$final" > "$final/torch_check.out" 2>&1
{ echo "== torch_check"; cat "$final/summary.txt" 2>/dev/null; } >> "$final/all.txt"
echo "== mpi + cuda context parallelism" >> "$final/all.txt"
cmake --build build-gpu -j "$(nproc)" --target mpi_cuda_context_parallel > "$final/mpi_build.log" 2>&1 || true
if command -v mpirun > /dev/null && [ -x build-gpu/tests/mpi/mpi_cuda_context_parallel ]; then
  for R in 1 2; do
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 timeout 240 \
      mpirun -np $R --oversubscribe build-gpu/tests/mpi/mpi_cuda_context_parallel 2>&1 | grep -v "^$" | tail -12 >> "$final/all.txt"
  done
else
  echo "skipped: no mpirun or no build-gpu/tests/mpi/mpi_cuda_context_parallel (MPI not found there)" >> "$final/all.txt"
fi
mv "$final/all.txt" "$sum"
cat "$sum"
