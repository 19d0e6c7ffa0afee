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
source bench/gpu/lease_common.sh
lease_begin "$1" decode
py=$(command -v python3)
build_gpu bench_cuda_decode || exit 1
torch_ok=1
build_torch "$py" || { torch_ok=0; echo "the Python module did not build (build-torch.log): bench_decode_torch.py skipped" | tee -a "$sum"; }
lease_stamp
timeout 240 ./build-gpu/bench/gpu/bench_cuda_decode --json "$out/decode.json" 2>&1 | tee -a "$sum"
if [ "$torch_ok" = 1 ]; then
  PYTHONPATH=$PWD/build-torch/python FLA_PATH=${FLA_PATH:-.peer} timeout 240 "$py" -W ignore \
    bench/gpu/bench_decode_torch.py --json "$out/decode_torch.json" 2>&1 | tee -a "$sum"
fi
