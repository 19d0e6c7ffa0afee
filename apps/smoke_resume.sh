#!/usr/bin/env bash
# CTest: a run stopped at step 100 and resumed with --resume reaches step 150 with exactly the
# history of an uninterrupted 150-step run (batches are a function of (seed, step); the
# checkpoint holds the parameters and Adam's moments). Usage: smoke_resume.sh BINARY WORKDIR
set -euo pipefail
binary=$1 work=$2
mkdir -p "$work"
opts=(--task mqar --length 32 --pairs 4 --train-size 500 --val-size 64 --batch 16 --eval-every 50 --no-progress --threads 1)
"$binary" "${opts[@]}" --steps 100 --checkpoint "$work/run.ckpt" --json "$work/first.json" > /dev/null
"$binary" "${opts[@]}" --steps 150 --resume "$work/run.ckpt" --json "$work/resumed.json" > /dev/null
"$binary" "${opts[@]}" --steps 150 --json "$work/whole.json" > /dev/null
/usr/bin/python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
strip = lambda h: [{k: v for k, v in x.items() if k != "tokens_per_s"} for x in h]
a = json.load(open(f"{w}/resumed.json"))["history"]
b = json.load(open(f"{w}/whole.json"))["history"]
assert len(a) == 3 and strip(a) == strip(b), f"resumed history differs:\n{a}\n{b}"
print("resume ok: identical history over", len(a), "evaluations")
PY
