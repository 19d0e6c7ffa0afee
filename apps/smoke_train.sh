#!/usr/bin/env bash
# CTest smoke test of loglinear-train --quick: runs it, then checks that the JSON is valid, has
# the documented fields, and that the training loss went down. Usage: smoke_train.sh BINARY OUT.json
set -euo pipefail
binary=$1 out=$2
"$binary" --quick --lambda mlp_softplus --steps 200 --json "$out" --no-progress
/usr/bin/python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("config", "git_commit", "history", "best_accuracy", "wall_time_s", "lambda_stats",
            "decay_stats", "first_train_loss", "last_train_loss", "steps_run"):
    assert key in r, f"missing {key}"
assert r["steps_run"] == 200, r["steps_run"]
assert len(r["history"]) == 2, r["history"]
first, last = r["first_train_loss"], r["last_train_loss"]
assert last < first, f"training loss did not go down: {first} -> {last}"
print(f"smoke ok: loss {first:.3f} -> {last:.3f}, best accuracy {r['best_accuracy']:.1f}%")
PY
