#!/usr/bin/env bash
# The README's main job: installs the dependencies (Debian packages only), builds everything in
# Release, runs the tour of the operator's forms (agreement and timings), then the quick
# adaptive-decay experiment (fixed vs mlp_softplus lambda on a small MQAR) and prints its table.
# A few minutes on 2 cores.  Usage (as root on Debian 12):  bash scripts/tour.sh
# shellcheck source=scripts/common.sh
source "$(dirname "$0")/common.sh"  # cd to the root, setup.sh, Release build into build/

step "tour: the three forms of log-linear attention on one input"
./build/apps/loglinear-tour

step "quick adaptive-decay experiment: MQAR T=64, 8 pairs, fixed vs mlp_softplus lambda"
mkdir -p build/quick
for mode in fixed mlp_softplus; do
  echo "-- lambda = $mode"
  ./build/apps/loglinear-train --quick --lambda "$mode" --eval-len 128 --json "build/quick/${mode}_kv8_eval128_seed0.json"
done
/usr/bin/python3 scripts/sweep.py --preset quick --report-only --out build/quick --report build/quick/RESULTS.md > /dev/null
sed -n '/^| lambda | KV pairs | T | eval T | seeds/,/^$/p' build/quick/RESULTS.md
echo "Full table, lambda statistics and plots: build/quick/RESULTS.md (per-run JSON in build/quick/)."
echo "The full experiment and what it says about the adaptive-decay claim: docs/RESULTS.md."
