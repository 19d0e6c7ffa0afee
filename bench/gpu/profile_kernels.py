#!/usr/bin/python3
"""Where a command's GPU time goes, per kernel (issue 12's "profile before you optimise").

Runs the command under Nsight Compute collecting one metric (gpu__time_duration.sum, the kernel's
duration; one metric keeps ncu's replay cheap), groups the launches by kernel name and prints each
kernel's share of the summed kernel time, its launch count and mean duration. Kernel time only:
launch gaps and host work are not in it; compare the sum with the run's wall time to see how
launch-bound a step is.

    python3 bench/gpu/profile_kernels.py --top 25 --json prof.json -- \\
        build-gpu/apps/loglinear-train --model mamba2 --task lm ... --steps 2 --device cuda
"""
import argparse
import collections
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--top", type=int, default=25, help="kernels to print")
ap.add_argument("--json", help="write the per-kernel table here")
ap.add_argument("--ncu", default="ncu", help="Nsight Compute's command line")
ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to profile")
args = ap.parse_args()
cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
if not cmd:
    sys.exit("profile_kernels: give the command to profile after --")
if shutil.which(args.ncu) is None:
    sys.exit(f"profile_kernels: {args.ncu} not found on PATH (Nsight Compute ships with the CUDA toolkit)")

t0 = time.time()
res = subprocess.run([args.ncu, "--csv", "--metrics", "gpu__time_duration.sum", "--print-units", "base"] + cmd,
                     capture_output=True, text=True)
if res.returncode != 0:
    sys.exit(f"profile_kernels: ncu failed ({res.returncode}):\n{res.stderr[-3000:]}\n{res.stdout[-3000:]}")
# ncu prints the command's own output first, then the CSV: start at its header line.
text = res.stdout
start = text.find('"ID","Process ID"')
if start < 0:
    sys.exit("profile_kernels: no CSV in ncu's output:\n" + text[-3000:])
rows = list(csv.DictReader(io.StringIO(text[start:])))
per = collections.defaultdict(lambda: [0, 0.0])
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    name = r["Kernel Name"].split("(")[0]
    per[name][0] += 1
    per[name][1] += float(r["Metric Value"].replace(",", "")) * 1e-9  # ns -> s
total = sum(v[1] for v in per.values())
table = sorted(({"kernel": k, "launches": v[0], "time_s": v[1], "share": v[1] / total if total else 0.0}
                for k, v in per.items()), key=lambda e: -e["time_s"])
print(f"{len(rows)} launches, {total * 1e3:.2f} ms of kernel time (ncu wall {time.time() - t0:.0f} s)")
print(f"{'share':>6} {'ms':>9} {'launches':>8} {'us/launch':>9}  kernel")
for e in table[:args.top]:
    print(f"{100 * e['share']:5.1f}% {e['time_s'] * 1e3:9.3f} {e['launches']:8d} "
          f"{e['time_s'] * 1e6 / e['launches']:9.1f}  {e['kernel'][:110]}")
# The shares by kind, the split that says what bounds a step: the attention operator's kernels
# (chunked_* stages, the decode step), the GEMMs (cuBLAS / CUTLASS names) and everything else
# (the models' elementwise, norm, conv, loss and optimiser kernels, conversions).
def kind(name):
    if "chunked_" in name or "decode_step" in name:
        return "attention operator"
    if re.search(r"gemm|xmma|cutlass|cublas|splitK", name, re.IGNORECASE):
        return "GEMMs"
    return "everything else"


groups = collections.defaultdict(float)
for e in table:
    groups[kind(e["kernel"])] += e["time_s"]
print("by kind: " + ", ".join(f"{k} {100 * v / total:.1f} % ({v * 1e3:.2f} ms)" for k, v in
                              sorted(groups.items(), key=lambda kv: -kv[1])) if total else "by kind: -")
if args.json:
    with open(args.json, "w") as f:
        json.dump({"command": cmd, "launches": len(rows), "kernel_time_s": total, "kernels": table,
                   "by_kind_s": dict(groups)}, f, indent=1)
