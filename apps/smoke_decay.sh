#!/usr/bin/env bash
# CTest smoke test of loglinear-train --decay KEY (a decay parameterisation of decay/, SPEC.md
# §14, in the task model): a short run writes valid JSON naming the decay, with finite losses and
# exp(g) in (0, 1] per layer; an unknown key fails with a message listing the valid ones.
# Usage: smoke_decay.sh BINARY WORKDIR KEY
set -euo pipefail
binary=$1 work=$2 key=$3
mkdir -p "$work"
"$binary" --decay "$key" --task mqar --length 32 --pairs 4 --train-size 500 --val-size 64 --batch 16 \
  --steps 30 --eval-every 10 --no-progress --threads 1 --json "$work/$key.json" > /dev/null
/usr/bin/python3 - "$work/$key.json" "$key" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
key = sys.argv[2]
assert r["config"]["decay"] == key and r["config"]["model"] == "task", r["config"]
assert r["steps_run"] == 30 and len(r["history"]) == 3, (r["steps_run"], r["history"])
assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in r["history"]), r["history"]
assert len(r["decay_stats"]) == 2, r["decay_stats"]
assert all(0 < s["min"] <= s["max"] <= 1 for s in r["decay_stats"]), r["decay_stats"]
print(f"decay {key} smoke ok: loss {r['first_train_loss']:.3f} -> {r['last_train_loss']:.3f}, "
      f"median exp(g) per layer {[round(s['median'], 4) for s in r['decay_stats']]}")
PY
if err=$("$binary" --decay not_a_decay --steps 1 --no-progress 2>&1); then
  echo "an unknown --decay was accepted"; exit 1
fi
grep -q "expected one of mamba2, gla, hgrn2, lightnet, tnl, tnl_l, simple_decay" <<< "$err" ||
  { echo "unexpected message for an unknown --decay: $err"; exit 1; }
