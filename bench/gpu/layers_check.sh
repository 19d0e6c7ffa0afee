#!/usr/bin/env bash
# A short lease after a change to the model layers' CUDA kernels (not the operator): build, the
# layers' and whole models' CUDA-vs-CPU tests ([cuda][nn] and [cuda][train]: every layer twin,
# one GPU step of both models against the CPU, the 50-step tracking, checkpoints across devices),
# the LM step's speed (issue 12's LM target; ours only: d = 512, 6 layers, T = 2048, B = 8) with
# TF32 GEMMs and bf16 attention, then in float32, then compute-sanitizer memcheck over the model tests.
# Fits a lease with little device time left (about 4 minutes); the summary is written as it goes,
# so a call cut short still returns what ran.
# OUTDIR receives summary.txt and layers_check.tgz.
# Usage (carry .devdeps and build-cpu/data/kjv.txt):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr bash bench/gpu/layers_check.sh OUTDIR [CORPUS]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
source bench/gpu/lease_common.sh
corpus=${2:-build-cpu/data/kjv.txt}
lease_begin "$1" layers_check
lease_stamp
t0=$SECONDS
build_gpu loglinear_tests loglinear-train || exit 1
echo "built in $((SECONDS - t0)) s" | tee -a "$sum"
cp "$sum" "$final/summary.txt"
timeout 120 ./build-gpu/tests/loglinear_tests "[cuda][nn],[cuda][train]" -r compact > "$out/tests.txt" 2>&1
echo "[cuda][nn],[cuda][train] tests (rc $?): $(grep -E "passed|failed" "$out/tests.txt" | tail -1)" | tee -a "$sum"
grep -E "failed|FAILED" "$out/tests.txt" | head -20 | tee -a "$sum"
cp "$sum" "$final/summary.txt"
train_at_precisions lm 1 --corpus "$corpus" --only "LM d=512 T=2048" --concurrency "" -- \
  "--matmul tf32 --attention bf16"
cp "$sum" "$final/summary.txt"
train_at_precisions lm_fp32 1 --corpus "$corpus" --only "LM d=512 T=2048" --concurrency "" -- "--matmul fp32"
cp "$sum" "$final/summary.txt"
timeout 90 compute-sanitizer --tool memcheck ./build-gpu/tests/loglinear_tests "[cuda][nn][model]" > "$out/memcheck.txt" 2>&1
echo "memcheck ([cuda][nn][model]): $(grep -E 'ERROR SUMMARY' "$out/memcheck.txt" | tail -1)" | tee -a "$sum"
cp "$sum" "$final/summary.txt"
