#!/usr/bin/env bash
# CTest smoke test of loglinear-train: the --quick MQAR preset (T = 64, 8 pairs, 400 steps) exactly
# as the README's main job runs it, for both lambda modes the report compares, `fixed` and
# `mlp_softplus` (about 20 and 25 s on an idle 2-core machine). For each mode it checks that the run
# completes, writes valid JSON with the documented fields (per layer and head diagnostics
# included), and that the training loss went down (no particular accuracy).
# Usage: smoke_train.sh BINARY OUT.json   (writes OUT.fixed.json and OUT.mlp_softplus.json)
set -euo pipefail
binary=$1 out=$2
# Bad values are refused up front with a message naming the flag and what it expects.
for bad in "--eval-every 0" "--batch 0" "--batch 1.5" "--steps 1e3" "--lr -1" "--clip 0" "--length 0" "--warmup -1"; do
  # shellcheck disable=SC2086
  if msg=$("$binary" --quick --no-progress $bad 2>&1); then echo "accepted: $bad" >&2; exit 1; fi
  flag=${bad%% *}
  grep -q -E -- "$flag: expected an? (number|integer)" <<< "$msg" || { echo "unclear error for $bad: $msg" >&2; exit 1; }
done
steps=400  # the --quick preset's own step count
for mode in fixed mlp_softplus; do
  json="${out%.json}.$mode.json"
  start=$(date +%s.%N)
  "$binary" --quick --lambda "$mode" --json "$json" --no-progress
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
# Per layer and head diagnostics: quantiles of exp(g) in (0, 1] and of lambda per level.
layers = r["diagnostics"]["layers"]
assert len(layers) == r["config"]["layers"], (mode, len(layers))
for layer in layers:
    assert len(layer["heads"]) == r["config"]["heads"], (mode, layer)
    for head in layer["heads"]:
        d = head["decay"]
        assert 0 < d["q05"] <= d["median"] <= d["q95"] <= 1, (mode, d)
        assert len(head["lambda"]) == r["config"]["levels"], (mode, head)
print(f"smoke ok ({mode}): loss {first:.3f} -> {last:.3f} in {steps} steps, "
      f"best accuracy {r['best_accuracy']:.1f}%, {end - start:.1f} s")
PY
done
