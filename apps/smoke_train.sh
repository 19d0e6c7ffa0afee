#!/usr/bin/env bash
# CTest smoke test of loglinear-train: the --quick MQAR preset (T = 64, 8 pairs) for both lambda
# modes the report compares, `fixed` and `mlp_softplus`, each cut to 100 steps (one evaluation):
# the full preset (400 steps) takes ~170 s of CPU per mode on the 2-core CI machine, 100 steps
# about a quarter of that. For each mode it checks that the run completes, writes valid JSON with
# the documented fields, and that the training loss went down (no particular accuracy).
# Usage: smoke_train.sh BINARY OUT.json   (writes OUT.fixed.json and OUT.mlp_softplus.json)
set -euo pipefail
binary=$1 out=$2
steps=100
for mode in fixed mlp_softplus; do
  json="${out%.json}.$mode.json"
  start=$(date +%s.%N)
  "$binary" --quick --lambda "$mode" --steps "$steps" --json "$json" --no-progress
  end=$(date +%s.%N)
  /usr/bin/python3 - "$json" "$mode" "$steps" "$start" "$end" <<'PY'
import json, math, sys
path, mode, steps, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
r = json.load(open(path))
for key in ("config", "git_commit", "history", "best_accuracy", "wall_time_s", "lambda_stats",
            "decay_stats", "first_train_loss", "last_train_loss", "steps_run"):
    assert key in r, f"{mode}: missing {key}"
assert r["config"]["lambda"] == mode, (mode, r["config"]["lambda"])
assert r["config"]["length"] == 64 and r["config"]["pairs"] == 8, f"{mode}: not the --quick preset: {r['config']}"
assert r["steps_run"] == steps, (mode, r["steps_run"])
assert len(r["history"]) == steps // r["config"]["eval_every"], (mode, r["history"])
first, last = r["first_train_loss"], r["last_train_loss"]
assert math.isfinite(first) and math.isfinite(last), f"{mode}: non-finite loss {first} -> {last}"
assert last < first, f"{mode}: training loss did not go down: {first} -> {last}"
print(f"smoke ok ({mode}): loss {first:.3f} -> {last:.3f} in {steps} steps, "
      f"best accuracy {r['best_accuracy']:.1f}%, {end - start:.1f} s")
PY
done
