#!/usr/bin/python3
"""How far results move between builds (issue 13, item 6): the same runs (same flags, same seeds)
trained by several loglinear-train binaries (e.g. the CPU build with portable flags, the CPU build
with -march=native, and the GPU build), compared evaluation by evaluation.

For each run it reports, per pair of builds: the largest relative difference of the training loss
over the evaluations, the largest absolute difference of validation accuracy (points), the
accuracy difference at the last step, and whether both builds solved the task at the same
evaluation. CPU runs of one build are bit-identical run to run; the differences measured here are
float rounding (summation order, FMA contraction, SIMD width, GPU kernels) amplified by training.

    /usr/bin/python3 scripts/build_drift.py --out drift \\
        --binary cpu=build/apps/loglinear-train --binary cpu-native=build-native/apps/loglinear-train \\
        --binary gpu=build-gpu/apps/loglinear-train:--device=cuda \\
        --seeds 0,1 --modes fixed,mlp_softplus --jobs 4 -- --task mqar --length 128 --pairs 8 --steps 2000 \\
        --eval-len 256 --val-size 1000 --threads 4

A binary is NAME=PATH[:EXTRA,FLAGS] (extra flags comma-separated, '=' for a space). The flags after
-- go to every run. Writes OUT/<name>/<mode>_seed<seed>.json and OUT/drift.json, prints a table.

Runs that exist already (the experiment's own runs, e.g. the GPU report runs of the same seeds)
join as --existing NAME=PATTERN, with {mode} and {seed} in the pattern; they are compared at the
evaluation steps both runs have, so a report run that trained longer compares over the common
steps (with no warm-up the learning rate does not depend on --steps, so the first steps of a longer
run are those of a shorter one). Their configuration must match the other runs' except for the
keys in RUN_ONLY (steps, threads, device, ...); a mismatch is refused, naming the key:

    /usr/bin/python3 scripts/build_drift.py --out drift --binary cpu=... --binary cpu-native=... \
        --existing gpu=docs/results/issue13/exp13-v2/mqar13/{mode}_T128_kv8_eval256_seed{seed}.json \
        -- --task mqar --length 128 --pairs 8 --eval-len 256 --steps 2000 --min-steps 2000 --val-size 1000
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def parse_binary(text):
    name, _, rest = text.partition("=")
    path, _, extra = rest.partition(":")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"--binary: expected NAME=PATH[:FLAGS], got {text!r}")
    flags = [x for f in extra.split(",") if f for x in f.split("=", 1)]
    return name, path, flags


def run(args, binary, mode, seed):
    name, path, extra = binary
    out = os.path.join(args.out, name, f"{mode}_seed{seed}.json")
    if os.path.exists(out):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [path, "--lambda", mode, "--seed", str(seed), "--json", out, "--no-progress"] + extra + args.flags
    with open(out[:-5] + ".log", "w") as log:
        if subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT) != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed; see {out[:-5]}.log")
    return out


# Configuration keys that may differ between compared runs: they do not change the first
# min(steps) steps of training (threads only reorder CPU sums, which is part of what is measured).
RUN_ONLY = {"steps", "threads", "device", "min_steps"}


def parse_existing(text):
    name, _, pattern = text.partition("=")
    if not name or "{mode}" not in pattern or "{seed}" not in pattern:
        raise argparse.ArgumentTypeError(f"--existing: expected NAME=PATTERN with {{mode}} and {{seed}}, got {text!r}")
    return name, pattern


def check_same_config(a, b, what):
    ca, cb = a["config"], b["config"]
    for key in sorted(set(ca) | set(cb)):
        if key not in RUN_ONLY and ca.get(key) != cb.get(key):
            sys.exit(f"build_drift.py: {what}: config key {key!r} differs ({ca.get(key)!r} vs {cb.get(key)!r}); "
                     "the runs must have the same flags")


def compare(a, b):
    """Both runs' evaluations at the steps they share (a longer run is cut to the shorter one's)."""
    hb = {x["step"]: x for x in b["history"]}
    pairs = [(x, hb[x["step"]]) for x in a["history"] if x["step"] in hb]
    if not pairs:
        sys.exit("build_drift.py: two runs share no evaluation step")
    last = pairs[-1][0]["step"]
    solved = [s if s is not None and s <= last else None for s in (a.get("solved_at_step"), b.get("solved_at_step"))]
    rel = max(abs(x["train_loss"] - y["train_loss"]) / max(abs(x["train_loss"]), 1e-30) for x, y in pairs)
    acc = max(abs(x["val_accuracy"] - y["val_accuracy"]) for x, y in pairs)
    return {"evaluations": len(pairs), "last_step": last, "max_rel_train_loss_diff": rel, "max_abs_val_acc_diff": acc,
            "last_acc_diff": pairs[-1][1]["val_accuracy"] - pairs[-1][0]["val_accuracy"],
            "solved_at": solved, "same_solve_step": solved[0] == solved[1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", type=parse_binary, default=[], help="NAME=PATH[:FLAGS]")
    ap.add_argument("--existing", action="append", type=parse_existing, default=[],
                    help="NAME=PATTERN: runs that exist already, {mode} and {seed} in the path")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--modes", default="fixed,mlp_softplus")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="drift")
    ap.add_argument("flags", nargs=argparse.REMAINDER, help="-- then loglinear-train flags for every run")
    args = ap.parse_args()
    args.flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = args.modes.split(",")
    jobs = list(itertools.product(args.binary, modes, seeds))
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda j: run(args, *j), jobs))
    os.makedirs(args.out, exist_ok=True)
    if len(args.binary) + len(args.existing) < 2:
        ap.error("expected at least two builds (--binary or --existing) to compare")
    paths = {b[0]: os.path.join(args.out, b[0], "{mode}_seed{seed}.json") for b in args.binary}
    paths.update(dict(args.existing))
    res = []
    for (n1, n2) in itertools.combinations(list(paths), 2):
        for mode, seed in itertools.product(modes, seeds):
            a = json.load(open(paths[n1].format(mode=mode, seed=seed)))
            b = json.load(open(paths[n2].format(mode=mode, seed=seed)))
            check_same_config(a, b, f"{n1} vs {n2}, {mode} seed {seed}")
            res.append(dict(compare(a, b), builds=[n1, n2], mode=mode, seed=seed,
                            commits=[a["git_commit"], b["git_commit"]], devices=[a["device_name"], b["device_name"]],
                            cxx_flags=[a.get("build", {}).get("cxx_flags"), b.get("build", {}).get("cxx_flags")]))
    with open(os.path.join(args.out, "drift.json"), "w") as f:
        json.dump({"flags": args.flags, "pairs": res}, f, indent=1)
    print("| builds | lambda | seed | evals (to step) | max rel. train-loss diff | max val-acc diff (points) | "
          "last acc diff | solved at |")
    print("|---|---|---|---|---|---|---|---|")
    for r in res:
        print(f"| {r['builds'][0]} vs {r['builds'][1]} | {r['mode']} | {r['seed']} | {r['evaluations']} ({r['last_step']}) | "
              f"{r['max_rel_train_loss_diff']:.2e} | {r['max_abs_val_acc_diff']:.2f} | {r['last_acc_diff']:+.2f} | "
              f"{r['solved_at'][0]} / {r['solved_at'][1]} |")


if __name__ == "__main__":
    sys.exit(main())
