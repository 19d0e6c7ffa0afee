#!/usr/bin/env bash
# Issue 12's LM target at matching precisions on both sides, in one sitting on one GPU: the
# Mamba-2 LM (d = 512, 6 layers, T = 2048, B = 8) trained by loglinear-train in float32, with TF32
# GEMMs (--matmul tf32), and with TF32 GEMMs and the operator on bf16 copies (--attention bf16);
# the PyTorch + fla peer (bench/gpu/peer_lm.py, eager and compiled) in float32, with TF32 GEMMs,
# and with TF32 GEMMs and fla's op in bf16. About 8 minutes. OUTDIR receives summary.txt and
# lm_tf32.tgz (the runs' JSON and logs).
# Usage (carry .devdeps, .peer with fla's exported package and build-cpu/data/kjv.txt):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr FLA_PATH=.peer bash bench/gpu/lm_tf32.sh OUTDIR [CORPUS]
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/lease_common.sh
corpus=${2:-build-cpu/data/kjv.txt}
lease_begin "$1" lm_tf32
build_gpu loglinear-train || exit 1
lease_stamp
# Ours: float32 (the reference), TF32 GEMMs, TF32 GEMMs with the operator on bf16 copies.
train_at_precisions ours 2 --corpus "$corpus" --only "LM d=512 T=2048" --concurrency "" -- \
  "--matmul fp32" "--matmul tf32" "--matmul tf32 --attention bf16"
# The peer in the same sitting, with the matching settings.
fla=${FLA_PATH:-.peer}
if [ -d "$fla/fla" ]; then
  i=0
  for p in "" "--tf32" "--tf32 --op-precision bf16"; do
    i=$((i + 1))
    echo "== peer_lm.py --compile $p" | tee -a "$sum"
    FLA_PATH="$fla" timeout 150 python3 -W ignore bench/gpu/peer_lm.py --compile $p --json "$out/peer_$i.json" \
      > "$out/peer_$i.txt" 2>&1
    grep -E "^\| PyTorch|^# (peer|error)" "$out/peer_$i.txt" | tee -a "$sum"
  done
else
  echo "no fla package under $fla: the peer was not run (git --git-dir=<mirror> archive HEAD fla | tar -x -C .peer)" | tee -a "$sum"
fi
