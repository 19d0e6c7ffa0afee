#!/usr/bin/env bash
# The first lease of a session that changed GPU code: build, every [cuda] test, compute-sanitizer
# memcheck over the operator's tests, the per-kernel profile of the MQAR and LM steps, and the
# MQAR speed (one run, then 8 under MPS). OUTDIR (the lease's $OUT) receives summary.txt, what to
# read first, and lease_check.tgz with every log, profile and JSON (one file: a lease returns at
# most 8). About 6-8 minutes on one H200.
# Usage: CMAKE_PREFIX_PATH=... [LEASE_CHECK_QUICK=1] bash bench/gpu/lease_check.sh OUTDIR [CORPUS]
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/lease_common.sh
corpus=${2:-build-cpu/data/kjv.txt}
lease_begin "$1" lease_check
build_gpu loglinear_tests loglinear-train || exit 1
lease_stamp
B=build-gpu/apps/loglinear-train
# LEASE_CHECK_QUICK=1: tests and memcheck only (a lease that checks new kernels before anything else).
timeout 300 ./build-gpu/tests/loglinear_tests "[cuda]" -r compact > "$out/tests.txt" 2>&1
echo "[cuda] tests (rc $?): $(grep -E "passed|failed" "$out/tests.txt" | tail -1)" | tee -a "$sum"
grep -E "failed|FAILED" "$out/tests.txt" | head -20 | tee -a "$sum"
timeout 240 compute-sanitizer --tool memcheck ./build-gpu/tests/loglinear_tests "[cuda][cross],[cuda][state],[cuda][varlen]" > "$out/memcheck.txt" 2>&1
echo "memcheck (operator): $(grep -E 'ERROR SUMMARY' "$out/memcheck.txt" | tail -1)" | tee -a "$sum"
# The carried-state kernels (chunked_state.cu) and the decode step share memory across threads:
# racecheck and synccheck over their tests too, and over the packed (varlen) kernels.
for tool in racecheck synccheck; do
  timeout 240 compute-sanitizer --tool $tool ./build-gpu/tests/loglinear_tests "[cuda][state],[cuda][varlen]" > "$out/$tool.txt" 2>&1
  echo "$tool ([cuda][state],[cuda][varlen]): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/$tool.txt" | tail -1)" | tee -a "$sum"
done
[ "${LEASE_CHECK_QUICK:-0}" = 1 ] && exit 0
timeout 90 python3 bench/gpu/profile_kernels.py --top 15 --json "$out/prof_mqar.json" -- $B --task mqar --length 128 \
  --pairs 16 --batch 64 --d-model 64 --layers 2 --device cuda --steps 20 --eval-every 20 --val-size 64 --no-progress \
  > "$out/prof_mqar.txt" 2>&1; head -12 "$out/prof_mqar.txt" | tee -a "$sum"
timeout 150 python3 bench/gpu/profile_kernels.py --top 15 --json "$out/prof_lm.json" -- $B --model mamba2 --task lm \
  --length 2048 --d-model 512 --layers 6 --heads 16 --d-state 64 --expand 2 --batch 8 --device cuda --steps 2 \
  --eval-every 2 --val-size 8 --no-progress --corpus "$corpus" > "$out/prof_lm.txt" 2>&1; head -12 "$out/prof_lm.txt" | tee -a "$sum"
timeout 150 python3 bench/gpu/bench_train.py --binary $B --corpus "$corpus" --devices cuda --only "mqar" \
  --out "$out/speed" > "$out/speed.txt" 2>&1; tail -6 "$out/speed.txt" | tee -a "$sum"
