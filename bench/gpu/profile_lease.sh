#!/usr/bin/env bash
# The profiles that decide the next optimisation (issues 12 and 14: "profile first"), one call:
#  1. the LM step with TF32 GEMMs and bf16 attention (issue 12's LM target, 1.07x the peer on
#     2026-12-03 against 1.5x asked): kernel time by kind (operator, GEMMs, the rest) and the
#     leading kernels, bench/gpu/profile_kernels.py over 2 training steps;
#  2. the bf16 operator alone at the short lengths where fla is faster (issue 14): per-kernel time
#     of bench_cuda_chunked at B*T = 32768, H = 16, D = 64 with T = 2048 and 4096, D = 128 with
#     T = 4096 (its warm-up and one timed repetition, LOGLINEAR_BENCH_REPS=1, of the forward and of
#     forward + backward);
#  3. loglinear.torch.decode_step from PyTorch (0.29 ms per token against 15-21 us for the kernel):
#     bench/gpu/profile_decode_torch.py;
#  4. the longest T whose forward and backward fit one GPU at H = 16, D = 64 (issue 17, N = 1):
#     bench/gpu/longest_t.py.
# Kernel times come from Nsight Compute (one metric, clocks locked at base by ncu's default), so
# they are larger than the timed runs' and serve for shares, not for absolute speed.
# OUTDIR receives summary.txt and profile.tgz (the tables as text and JSON). About 5 minutes.
# Usage (carry .devdeps and build-cpu/data/kjv.txt):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr bash bench/gpu/profile_lease.sh OUTDIR [CORPUS]
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/lease_common.sh
lease_begin "$1" profile
corpus=${2:-build-cpu/data/kjv.txt}
py=$(command -v python3)
lease_stamp
build_gpu loglinear-train bench_cuda_chunked || exit 1

echo "== 1. LM d=512 T=2048 B=8 6 layers, --matmul tf32 --attention bf16, 2 steps" | tee -a "$sum"
timeout 240 "$py" bench/gpu/profile_kernels.py --top 30 --json "$out/lm.json" -- \
  build-gpu/apps/loglinear-train --model mamba2 --task lm --corpus "$corpus" --length 2048 --d-model 512 \
  --layers 6 --heads 16 --d-state 64 --expand 2 --batch 8 --device cuda --matmul tf32 --attention bf16 \
  --steps 2 --eval-every 2 --val-size 8 --no-progress > "$out/lm.txt" 2>&1
echo "(rc $?)" | tee -a "$sum"
grep -E "launches,|^by kind|^ *[0-9.]+%" "$out/lm.txt" | head -24 | tee -a "$sum"

for shape in "64 2048" "64 4096" "128 4096"; do
  set -- $shape
  echo "== 2. operator bf16, D=$1 T=$2, B*T=32768, H=16" | tee -a "$sum"
  LOGLINEAR_BENCH_STORAGE=bf16 LOGLINEAR_BENCH_REPS=1 timeout 180 "$py" bench/gpu/profile_kernels.py --top 16 \
    --json "$out/op_D$1_T$2.json" -- build-gpu/bench/gpu/bench_cuda_chunked 32768 "$1" "$2" > "$out/op_D$1_T$2.txt" 2>&1
  echo "(rc $?)" | tee -a "$sum"
  grep -E "launches,|^by kind|^ *[0-9.]+%" "$out/op_D$1_T$2.txt" | head -18 | tee -a "$sum"
done

echo "== 2b. operator bf16 timed (no ncu), D=64, B*T=32768: T = 64 (no chunk level: the fixed cost) to 4096" |
  tee -a "$sum"
for T in 64 256 1024 4096; do
  LOGLINEAR_BENCH_STORAGE=bf16 timeout 60 build-gpu/bench/gpu/bench_cuda_chunked 32768 64 "$T" 2>&1 | grep "^| bf16" |
    tee -a "$sum"
done

echo "== 3. loglinear.torch.decode_step, B=1 t=1024 D=64" | tee -a "$sum"
if build_torch "$py"; then
  PYTHONPATH=$PWD/build-torch/python timeout 180 "$py" -W ignore bench/gpu/profile_decode_torch.py \
    --json "$out/decode_profile.json" > "$out/decode_profile.txt" 2>&1
  echo "(rc $?)" | tee -a "$sum"
  head -60 "$out/decode_profile.txt" | tee -a "$sum"
  echo "== 4. the longest T whose forward + backward fit this GPU, H=16 D=64 (issue 17, N = 1)" | tee -a "$sum"
  PYTHONPATH=$PWD/build-torch/python timeout 240 "$py" -W ignore bench/gpu/longest_t.py \
    --json "$out/longest_t.json" > "$out/longest_t.txt" 2>&1
  echo "(rc $?)" | tee -a "$sum"
  cat "$out/longest_t.txt" | tee -a "$sum"
fi
