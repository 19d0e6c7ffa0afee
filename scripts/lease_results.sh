#!/usr/bin/env bash
# After a GPU lease of an issue-13 sweep (scripts/gpu_experiment.sh), on the working machine:
#  1. unpacks the lease's PRESET.tgz into experiments/ (finished runs' JSON and logs, the
#     checkpoints of runs the deadline stopped, LEASES.txt);
#  2. deletes the checkpoints of runs that have finished since (a resumed run leaves its old
#     checkpoint behind), so that experiments/PRESET stays small enough to carry (64 MiB in all);
#  3. copies the finished runs' JSON and LEASES.txt into docs/results/issue13/exp13-v2/PRESET/;
#  4. keeps a copy of experiments/PRESET as /work/PRESET-<date>.tgz when /work exists (a new
#     session's checkout starts without experiments/), and prints what is finished and in flight.
# The report is then regenerated with scripts/report.py (docs/results/issue13/README.md).
# Usage: bash scripts/lease_results.sh PRESET LEASE_TGZ     e.g. selcopy13 /work/.device/8/selcopy13.tgz
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || [ ! -f "$2" ]; then
  echo "usage: bash scripts/lease_results.sh PRESET LEASE_TGZ (the tgz that gpu_experiment.sh wrote to \$OUT)" >&2
  exit 2
fi
preset=$1 tgz=$2
case "$preset" in *[!a-z0-9_]*|"") echo "lease_results: PRESET: expected a sweep preset name, got '$preset'" >&2; exit 2;; esac
mkdir -p experiments
tar -xzf "$tgz" -C experiments
dir=experiments/$preset
[ -d "$dir" ] || { echo "lease_results: $tgz holds no $preset/ folder" >&2; exit 1; }
stale=0
for ckpt in "$dir"/checkpoints/*.ckpt; do
  [ -e "$ckpt" ] || continue
  run=$(basename "$ckpt" .ckpt)
  if [ -f "$dir/$run.json" ]; then rm -f "$ckpt" "$ckpt.json"; stale=$((stale + 1)); fi
done
dest=docs/results/issue13/exp13-v2/$preset
mkdir -p "$dest"
cp "$dir"/*.json "$dest"/ 2>/dev/null || true
[ -f "$dir/LEASES.txt" ] && cp "$dir/LEASES.txt" "$dest"/
finished=$(find "$dir" -maxdepth 1 -name "*.json" | wc -l)
inflight=$(find "$dir/checkpoints" -maxdepth 1 -name "*.ckpt" 2>/dev/null | wc -l)
echo "lease_results: $preset: $finished finished runs (copied to $dest), $inflight in flight with checkpoints," \
  "$stale stale checkpoints deleted; $(du -sh "$dir" | cut -f1) in $dir"
if [ -d /work ] && [ -w /work ]; then
  keep=/work/$preset-$(date +%Y%m%d-%H%M).tgz
  tar -czf "$keep" -C experiments "$preset"
  echo "lease_results: kept $keep (untar into experiments/ in a new session)"
fi
