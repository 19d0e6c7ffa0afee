#!/usr/bin/env bash
# The side-by-side GPU benchmark of bench/RESULTS-gpu.md in one command, on the device machine:
# builds bench_cuda_chunked, runs ours (fp32 and bf16), SDPA-flash with the measured ceilings,
# flash-linear-attention's Triton kernel (if FLA_PATH points at an exported `fla/` package; it
# is never committed), and prints the merged table (bench/gpu/merge_results.py).
# Usage: [FLA_PATH=.peer] [CMAKE_PREFIX_PATH=...] bash bench/gpu/run_all.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-gpu/bench-results}
mkdir -p "$out"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=OFF \
  -DLOGLINEAR_BUILD_EXAMPLES=OFF -DLOGLINEAR_BUILD_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/cmake.log"
cmake --build build-gpu -j "$(nproc)" --target bench_cuda_chunked > "$out/build.log"
./build-gpu/bench/gpu/bench_cuda_chunked | tee "$out/ours.md"
PYTHONUNBUFFERED=1 python3 -W ignore bench/gpu/bench_sdpa.py | tee "$out/sdpa.md"
fla=${FLA_PATH:-.peer}
if [ -d "$fla/fla" ]; then
  PYTHONUNBUFFERED=1 FLA_PATH="$fla" python3 -W ignore bench/gpu/bench_fla.py | tee "$out/fla.md"
  python3 bench/gpu/merge_results.py "$out/ours.md" "$out/sdpa.md" "$out/fla.md" | tee "$out/merged.md"
else
  echo "run_all.sh: no fla package under $fla (export it: git --git-dir=<mirror> archive HEAD fla | tar -x -C .peer); merging without fla" >&2
  python3 bench/gpu/merge_results.py "$out/ours.md" "$out/sdpa.md" | tee "$out/merged.md"
fi
