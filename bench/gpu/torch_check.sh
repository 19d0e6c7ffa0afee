#!/usr/bin/env bash
# Issue 15 on the GPU machine, one lease: builds the Python package with CUDA against the machine's
# own python3 (torch 2.11 there), runs tests/python/test_torch.py (the CUDA tests and, on torch >=
# 2.4, the custom-op tests: opcheck and torch.compile fullgraph), then bench/gpu/torch_op_bench.py
# (the op's overhead over the C++ device call; its error beside fla's if FLA_PATH is set), and
# examples/torch/mamba2_mqar.py on the GPU (its default run and its README's larger task).
# OUTDIR receives summary.txt and torch_check.tgz (logs, JSON). About 5 minutes on one H200.
# Usage (carry .devdeps, from scripts/devdeps.sh):
#   CMAKE_PREFIX_PATH=$PWD/.devdeps/usr bash bench/gpu/torch_check.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/lease_common.sh
lease_begin "$1" torch_check
py=$(command -v python3)
echo "python: $py ($($py -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)'))" | tee -a "$sum"
build_torch "$py" || exit 1
export PYTHONPATH=$PWD/build-torch/python
(cd tests/python && timeout 300 "$py" -m unittest -v test_torch > "$out/test_torch.txt" 2>&1)
echo "test_torch (rc $?): $(tail -1 "$out/test_torch.txt")" | tee -a "$sum"
grep -E "^(FAIL|ERROR)|skipped|Error" "$out/test_torch.txt" | head -30 | tee -a "$sum"
# examples/torch on the GPU (issue 15, item 6): the README's default run, then its larger task
# (2000 steps rather than the README's 3000, to keep state_check.sh's call under 10 minutes).
n=0
for cfg in "--steps 500" "--seq-len 128 --pairs 16 --d-model 128 --batch 64 --steps 2000"; do
  n=$((n + 1)) tag=_$n
  timeout 300 "$py" examples/torch/mamba2_mqar.py --device cuda $cfg --json "$out/example$tag.json" \
    > "$out/example$tag.txt" 2>&1
  echo "examples/torch/mamba2_mqar.py --device cuda $cfg (rc $?):" | tee -a "$sum"
  grep -E "^(log-linear|trained|FAIL)|Error" "$out/example$tag.txt" | tee -a "$sum"
done
# fla beside ours (error against float64 for fla's op and its naive reference) when .peer has it.
[ -d "${FLA_PATH:-.peer}/fla" ] && export FLA_PATH=${FLA_PATH:-.peer}
timeout 240 "$py" bench/gpu/torch_op_bench.py --json "$out/torch_op.json" > "$out/torch_op.txt" 2>&1
echo "torch_op_bench (rc $?):" | tee -a "$sum"; cat "$out/torch_op.txt" | tee -a "$sum"
