#!/usr/bin/env bash
# CTest: SIGTERM stops a run after its current step with exit status 3 and the checkpoint saved at
# that step; resuming from it ends with exactly the history of an uninterrupted run of the same
# length (what scripts/sweep.py --deadline relies on). Also: --min-steps holds the early stop back
# while solved_at_step records the first evaluation that reached it, and the JSON has the build record.
# Usage: smoke_interrupt.sh BINARY WORKDIR
set -uo pipefail
binary=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
opts=(--task mqar --length 32 --pairs 4 --train-size 500 --val-size 64 --batch 16 --eval-every 20 --no-progress --threads 1)
"$binary" "${opts[@]}" --steps 1000000 --checkpoint "$work/run.ckpt" > "$work/first.out" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -f "$work/run.ckpt.json" ] && break
  kill -0 $pid 2> /dev/null || { echo "the run ended before its first checkpoint:" >&2; cat "$work/first.out" >&2; exit 1; }
  sleep 0.1
done
[ -f "$work/run.ckpt.json" ] || { echo "no checkpoint after 60 s" >&2; kill -9 $pid; exit 1; }
kill -TERM $pid
wait $pid
rc=$?
[ "$rc" = 3 ] || { echo "SIGTERM: expected exit status 3, got $rc" >&2; cat "$work/first.out" >&2; exit 1; }
grep -q "continue with --resume" "$work/first.out" || { cat "$work/first.out" >&2; exit 1; }
stop=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$work/run.ckpt.json")
end=$((stop + 30))
"$binary" "${opts[@]}" --steps $end --resume "$work/run.ckpt" --json "$work/resumed.json" > /dev/null || exit 1
"$binary" "${opts[@]}" --steps $end --json "$work/whole.json" > /dev/null || exit 1
# Early stop at 0 % is reached at the first evaluation (step 20); --min-steps 50 trains on to step 60.
"$binary" "${opts[@]}" --steps 200 --early-stop 0 --min-steps 50 --json "$work/min.json" > /dev/null || exit 1
/usr/bin/python3 - "$work" "$stop" <<'PY'
import json, sys
w, stop = sys.argv[1], int(sys.argv[2])
strip = lambda h: [{k: v for k, v in x.items() if k != "tokens_per_s"} for x in h]
a = json.load(open(f"{w}/resumed.json"))
b = json.load(open(f"{w}/whole.json"))
assert a["resumed_at_step"] == stop, (a.get("resumed_at_step"), stop)
assert strip(a["history"]) == strip(b["history"]), f"resumed history differs:\n{a['history']}\n{b['history']}"
m = json.load(open(f"{w}/min.json"))
assert m["steps_run"] == 60 and m["stopped_early"] and m["solved_at_step"] == 20, \
    (m["steps_run"], m["stopped_early"], m["solved_at_step"])
for key in ("compiler", "build_type", "cxx_flags", "eigen", "cuda"):
    assert m["build"].get(key), f"build record lacks {key}: {m['build']}"
print(f"interrupt ok: stopped at step {stop}, resumed to {stop + 30} with an identical history; "
      f"--min-steps 50 stopped at {m['steps_run']}, solved at {m['solved_at_step']}")
PY
