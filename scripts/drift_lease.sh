#!/usr/bin/env bash
# Issue 13, item 6, in one GPU lease: how far one run moves between builds of the experiments'
# tag. Builds .exp/src (the git-archive export of the tag, as scripts/gpu_experiment.sh) three
# ways outside any checkout: CPU portable (the Release flags CI uses), CPU -march=native
# (LOGLINEAR_NATIVE=ON) and CUDA (sm_90, as the sweeps), then runs scripts/build_drift.py: MQAR
# T = 128, 8 pairs, eval at 256, 2000 steps, 1000 validation sequences, seeds 0-1, lambda fixed and
# mlp_softplus, each by each build. OUTDIR receives drift.tgz (every run's JSON and drift.json) and
# drift.txt (the table). About 6-8 minutes on the 16-core H200 machine.
# Usage: CMAKE_PREFIX_PATH=... bash scripts/drift_lease.sh OUTDIR
set -euo pipefail
out=$1
src=.exp/src
[ -f "$src/COMMIT" ] && ! grep -q 'Format:' "$src/COMMIT" ||
  { echo "drift_lease.sh: no filled-in $src/COMMIT (git archive --prefix=src/ TAG | tar -x -C .exp)" >&2; exit 1; }
echo "sources: $(cat "$src/COMMIT")"
work=$(mktemp -d /tmp/loglinear-drift-XXXXXX)
mkdir -p "$work/src" && cp -r "$src/." "$work/src/"
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_PYTHON=OFF -DLOGLINEAR_BUILD_TESTS=OFF
        -DLOGLINEAR_BUILD_BENCH=OFF -DLOGLINEAR_BUILD_EXAMPLES=OFF)
build() {  # build NAME CMAKE_FLAGS...
  local name=$1; shift
  cmake -S "$work/src" -B "$work/$name" "${common[@]}" "$@" > "$out/cmake-$name.log" 2>&1 &&
    cmake --build "$work/$name" -j "$(nproc)" --target loglinear-train > "$out/build-$name.log" 2>&1 ||
    { tail -20 "$out/build-$name.log" "$out/cmake-$name.log"; exit 1; }
}
t0=$(date +%s)
build cpu -DLOGLINEAR_CUDA=OFF
build cpu-native -DLOGLINEAR_CUDA=OFF -DLOGLINEAR_NATIVE=ON
build gpu -DLOGLINEAR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
echo "built in $(($(date +%s) - t0)) s"
# 4 threads a CPU run (16 cores: the 8 CPU runs at once, then the GPU runs); the GPU build runs
# its 4 runs under the same flags with --device cuda.
python3 scripts/build_drift.py --out "$work/drift" \
  --binary "cpu=$work/cpu/apps/loglinear-train" --binary "cpu-native=$work/cpu-native/apps/loglinear-train" \
  --binary "gpu=$work/gpu/apps/loglinear-train:--device=cuda" --seeds 0,1 --modes fixed,mlp_softplus --jobs 4 \
  -- --task mqar --length 128 --pairs 8 --eval-len 256 --steps 2000 --val-size 1000 --threads 4 --no-progress \
  | tee "$out/drift.txt"
lscpu | grep -E "Model name|Flags" | cut -c1-200 > "$work/drift/cpu.txt"
tar -czf "$out/drift.tgz" -C "$work" drift
