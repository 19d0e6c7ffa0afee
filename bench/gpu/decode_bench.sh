#!/usr/bin/env bash
# Issue 14's decode table in one call: bench_cuda_decode (the device decoding step's per-token
# latency at t = 1 .. 1M and its throughput for B = 1 .. 256 streams) and bench_decode_torch.py
# (decode_step from PyTorch beside fla's chunk op re-run on one token, same sitting). Reuses
# build-gpu and build-torch when an earlier call on the same warm machine built them
# (bench/gpu/state_check.sh does). OUTDIR receives summary.txt and decode.tgz.
# Usage (carry .devdeps and .peer):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr FLA_PATH=.peer bash bench/gpu/decode_bench.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/../.."
final=$1
out=$(mktemp -d)
sum="$out/summary.txt"
trap 'cp "$sum" "$final/" 2>/dev/null; tar -czf "$final/decode.tgz" -C "$out" .' EXIT
py=$(command -v python3)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=OFF \
  -DLOGLINEAR_BUILD_EXAMPLES=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/cmake.log" 2>&1 || { tail -20 "$out/cmake.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target bench_cuda_decode > "$out/build.log" 2>&1 ||
  { grep -B2 -A6 error "$out/build.log" | head -40; exit 1; }
cmake -S . -B build-torch -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=ON \
  -DLOGLINEAR_BUILD_TESTS=OFF -DLOGLINEAR_BUILD_BENCH=OFF -DLOGLINEAR_BUILD_EXAMPLES=OFF -DLOGLINEAR_MPI=OFF \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DPython_EXECUTABLE="$py" > "$out/cmake-torch.log" 2>&1 &&
  cmake --build build-torch -j "$(nproc)" --target loglinear_python > "$out/build-torch.log" 2>&1 ||
  echo "the Python module did not build (build-torch.log): bench_decode_torch.py skipped" | tee -a "$sum"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)" | tee -a "$sum"
timeout 240 ./build-gpu/bench/gpu/bench_cuda_decode --json "$out/decode.json" 2>&1 | tee -a "$sum"
if [ -f build-torch/python/loglinear/torch.py ]; then
  PYTHONPATH=$PWD/build-torch/python FLA_PATH=${FLA_PATH:-.peer} timeout 240 "$py" -W ignore \
    bench/gpu/bench_decode_torch.py --json "$out/decode_torch.json" 2>&1 | tee -a "$sum"
fi
