#!/usr/bin/env bash
# CTest smoke test of loglinear-train --mixer gdn (log-linear Gated DeltaNet, SPEC.md §6): the
# --quick MQAR preset (100 steps) with the task model completes, writes valid JSON recording the mixer, and
# lowers the training loss; the LM (--model mamba2 --mixer gdn, nn/gdn_mixer.hpp blocks) writes
# JSON and a run stopped at step 20 and resumed to 30 has exactly the history of an uninterrupted
# 30-step run; resuming it with another --mixer, and an unknown --mixer, are refused with a
# message naming the flag. Usage: smoke_gdn.sh BINARY WORKDIR
set -euo pipefail
binary=$1 work=$2
mkdir -p "$work"
# 100 of the preset's 400 steps: enough to see the loss fall, a quarter of the CI time.
"$binary" --quick --steps 100 --val-size 64 --mixer gdn --json "$work/quick.json" --no-progress > /dev/null
lm=(--model mamba2 --mixer gdn --task mqar --length 32 --pairs 4 --train-size 500 --val-size 64 --batch 16
    --d-model 32 --heads 2 --d-state 8 --eval-every 10 --no-progress --threads 1)
"$binary" "${lm[@]}" --steps 20 --checkpoint "$work/lm.ckpt" > /dev/null
"$binary" "${lm[@]}" --steps 30 --resume "$work/lm.ckpt" --json "$work/resumed.json" > /dev/null
"$binary" "${lm[@]}" --steps 30 --json "$work/whole.json" > /dev/null
/usr/bin/python3 - "$work" <<'PY'
import json, math, sys
w = sys.argv[1]
q = json.load(open(f"{w}/quick.json"))
c = q["config"]
assert c["mixer"] == "gdn" and c["model"] == "task" and c["length"] == 64 and c["pairs"] == 8, c
assert q["steps_run"] == 100 or q["stopped_early"], q["steps_run"]
assert math.isfinite(q["last_train_loss"]) and q["last_train_loss"] < q["first_train_loss"], \
    (q["first_train_loss"], q["last_train_loss"])
r = json.load(open(f"{w}/whole.json"))
assert r["config"]["mixer"] == "gdn" and r["config"]["model"] == "mamba2", r["config"]
assert r["steps_run"] == 30 and len(r["history"]) == 3, (r["steps_run"], r["history"])
assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in r["history"]), r["history"]
assert len(r["decay_stats"]) == 2 and len(r["lambda_stats"]) == 2, "expected statistics of 2 layers"
strip = lambda h: [{k: v for k, v in x.items() if k != "tokens_per_s"} for x in h]
a = json.load(open(f"{w}/resumed.json"))["history"]
assert strip(a) == strip(r["history"]), f"resumed history differs:\n{a}\n{r['history']}"
print(f"gdn smoke ok: task model --quick loss {q['first_train_loss']:.3f} -> {q['last_train_loss']:.3f} "
      f"(best accuracy {q['best_accuracy']:.1f}%), LM resume exact")
PY
lm_mamba2=("${lm[@]}")
lm_mamba2[3]=mamba2  # --mixer mamba2
if err=$("$binary" "${lm_mamba2[@]}" --steps 30 --resume "$work/lm.ckpt" 2>&1); then
  echo "a gdn checkpoint was resumed with --mixer mamba2"; exit 1
fi
grep -q "resume with the same --mixer" <<< "$err" || { echo "unexpected message for a --mixer change: $err"; exit 1; }
if err=$("$binary" --mixer delta --steps 1 --no-progress 2>&1); then
  echo "an unknown --mixer was accepted"; exit 1
fi
grep -q -- '--mixer: expected one of mamba2, gdn, got "delta"' <<< "$err" ||
  { echo "unexpected message for an unknown --mixer: $err"; exit 1; }
