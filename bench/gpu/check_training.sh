#!/usr/bin/env bash
# The GPU training path's checks on the device machine (bench/RESULTS-gpu.md, "Training on the GPU"):
# builds everything with CUDA, runs every [cuda] test (each GPU twin against its CPU twin, both
# whole models, the training device), then compute-sanitizer memcheck and racecheck over the layer
# twins and one whole-model case, and prints each tool's summary.
# Usage: [CMAKE_PREFIX_PATH=...] bash bench/gpu/check_training.sh [OUTDIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-gpu/check-training}
mkdir -p "$out"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=OFF \
  -DLOGLINEAR_BUILD_EXAMPLES=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/cmake.log" || { tail -20 "$out/cmake.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target loglinear_tests loglinear-train > "$out/build.log" ||
  { grep -A3 error "$out/build.log" | head -40; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
./build-gpu/tests/loglinear_tests "[cuda]" -r compact > "$out/tests.txt" 2>&1
echo "tests: $(tail -2 "$out/tests.txt" | tr '\n' ' ')"
grep -E "failed" "$out/tests.txt" | head -20
layers="[cuda][nn]~[model],[cuda][core],[cuda][train]~[device],[cuda][lambda],[cuda][decay]"
one_model="cuda nn::TaskModel: one step equals the CPU model at other sizes,cuda nn::Mamba2Mixer: equals the CPU mixer at other sizes,cuda nn::MambaLm: one step equals the CPU LM at other sizes"
for tool in memcheck racecheck; do
  compute-sanitizer --tool "$tool" ./build-gpu/tests/loglinear_tests "$layers" > "$out/$tool-layers.txt" 2>&1
  echo "$tool (layer twins): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool-layers.txt" | tail -1); tests: $(grep -E '^test cases' "$out/$tool-layers.txt" | tail -1)"
  compute-sanitizer --tool "$tool" ./build-gpu/tests/loglinear_tests "$one_model" > "$out/$tool-model.txt" 2>&1
  echo "$tool (task model, mixer, LM): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool-model.txt" | tail -1); tests: $(grep -E '^(test cases|All tests)' "$out/$tool-model.txt" | tail -1)"
done
