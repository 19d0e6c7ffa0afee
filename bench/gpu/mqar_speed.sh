#!/usr/bin/env bash
# Issue 12's MQAR target in one call: "a 2000-step MQAR run in <= 6 s on one H200, with 8+ such
# runs at once". Measured on 2026-12-02 in float32: one run 3.36 s, eight at once under MPS 12.3 s
# each. This runs, in one sitting, one run and eight at once under MPS (bench_train.py: MQAR T =
# 128, 16 pairs, batch 64, d = 64, 2 layers, 2000 steps) for each precision: float32 (the
# reference), the operator on bf16 copies (--attention bf16), and that with TF32 GEMMs. The
# opt-in precisions are what a user who wants speed would pick; their error bounds are stated in
# loglinear-train --help and tested (tests/cuda/train).
# OUTDIR receives summary.txt and mqar_speed.tgz (the JSON of every run). About 2 minutes.
# Usage (carry .devdeps):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr bash bench/gpu/mqar_speed.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/lease_common.sh
lease_begin "$1" mqar_speed
build_gpu loglinear-train || exit 1
lease_stamp
train_at_precisions mqar 3 --only mqar --concurrency mps --concurrent 8 -- \
  "" "--attention bf16" "--matmul tf32 --attention bf16"
