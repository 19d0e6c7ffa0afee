#!/usr/bin/env bash
# CTest smoke test of loglinear-train --model mamba2 (the full log-linear Mamba-2 LM of nn/lm.hpp
# on the task batches): a short run writes valid JSON naming the model, with finite losses and
# per-layer statistics; a run stopped at step 20 and resumed to 30 has exactly the history of an
# uninterrupted 30-step run. Usage: smoke_mamba2.sh BINARY WORKDIR
set -euo pipefail
binary=$1 work=$2
mkdir -p "$work"
opts=(--model mamba2 --task mqar --length 32 --pairs 4 --train-size 500 --val-size 64 --batch 16
      --d-model 32 --heads 2 --d-state 8 --eval-every 10 --no-progress --threads 1)
"$binary" "${opts[@]}" --steps 20 --checkpoint "$work/run.ckpt" --json "$work/first.json" > /dev/null
"$binary" "${opts[@]}" --steps 30 --resume "$work/run.ckpt" --json "$work/resumed.json" > /dev/null
"$binary" "${opts[@]}" --steps 30 --json "$work/whole.json" > /dev/null
/usr/bin/python3 - "$work" <<'PY'
import json, math, sys
w = sys.argv[1]
r = json.load(open(f"{w}/whole.json"))
for key in ("config", "git_commit", "history", "best_accuracy", "wall_time_s", "lambda_stats",
            "decay_stats", "first_train_loss", "last_train_loss", "steps_run"):
    assert key in r, f"missing {key}"
c = r["config"]
assert c["model"] == "mamba2" and c["decay"] == "mamba2", c
assert c["d_state"] == 8 and c["expand"] == 2 and c["ffn_hidden"] == 128, c
assert r["steps_run"] == 30 and len(r["history"]) == 3, (r["steps_run"], r["history"])
assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in r["history"]), r["history"]
assert len(r["decay_stats"]) == 2 and len(r["lambda_stats"]) == 2, "expected statistics of 2 layers"
assert all(0 < s["min"] <= s["max"] <= 1 for s in r["decay_stats"]), r["decay_stats"]
strip = lambda h: [{k: v for k, v in x.items() if k != "tokens_per_s"} for x in h]
a = json.load(open(f"{w}/resumed.json"))["history"]
assert strip(a) == strip(r["history"]), f"resumed history differs:\n{a}\n{r['history']}"
print(f"mamba2 smoke ok: loss {r['first_train_loss']:.3f} -> {r['last_train_loss']:.3f}, resume exact")
PY
