#!/usr/bin/env bash
# CTest: a run stopped at step 100 and resumed with --resume reaches step 150 with exactly the
# history of an uninterrupted 150-step run (batches are a function of (seed, step); the
# checkpoint holds the parameters and Adam's moments), and its wall time counts both segments.
# Usage: smoke_resume.sh BINARY WORKDIR
set -euo pipefail
binary=$1 work=$2
mkdir -p "$work"
opts=(--task mqar --length 32 --pairs 4 --train-size 500 --val-size 64 --batch 16 --eval-every 50 --no-progress --threads 1)
"$binary" "${opts[@]}" --steps 100 --checkpoint "$work/run.ckpt" --json "$work/first.json" > /dev/null
"$binary" "${opts[@]}" --steps 150 --resume "$work/run.ckpt" --json "$work/resumed.json" > /dev/null
"$binary" "${opts[@]}" --steps 150 --json "$work/whole.json" > /dev/null
# Resuming with other settings (here the seed) is refused with a message naming them.
if "$binary" "${opts[@]}" --seed 5 --steps 150 --resume "$work/run.ckpt" > /dev/null 2> "$work/mismatch.err"; then
  echo "resume with --seed 5 (checkpoint: 0) was accepted" >&2; exit 1
fi
grep -q "was written with seed = 0, this run has seed = 5" "$work/mismatch.err" || { cat "$work/mismatch.err" >&2; exit 1; }
/usr/bin/python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
strip = lambda h: [{k: v for k, v in x.items() if k != "tokens_per_s"} for x in h]
a = json.load(open(f"{w}/resumed.json"))["history"]
b = json.load(open(f"{w}/whole.json"))["history"]
assert len(a) == 3 and strip(a) == strip(b), f"resumed history differs:\n{a}\n{b}"
# The totals cover both segments: the resumed run's wall time includes the first run's.
first, resumed = json.load(open(f"{w}/first.json")), json.load(open(f"{w}/resumed.json"))
assert resumed["resumed_at_step"] == 100, resumed.get("resumed_at_step")
assert resumed["wall_time_s"] > first["wall_time_s"] * 0.99, (first["wall_time_s"], resumed["wall_time_s"])
print("resume ok: identical history over", len(a), "evaluations")
PY
