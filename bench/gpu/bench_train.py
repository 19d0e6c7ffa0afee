#!/usr/bin/python3
"""Training speed of loglinear-train on the GPU against the CPU build on 2 cores, each pair in one
sitting (issue 12, item 5; the table in bench/RESULTS-gpu.md, "Training on the GPU").

For every configuration it runs the same command twice, --device cuda and --device cpu (pinned to
two cores with taskset and --threads 2), for a fixed number of steps without early stop or
evaluation inside the timed segment, and reads the run's JSON: train_time_s (training steps only),
train_tokens_per_s, and peak_device_memory_bytes (the library's device buffers; the CUDA context is
not counted). Steps/s = steps / train_time_s. It also runs N GPU jobs at once (one process each) to
show how many tiny runs one GPU holds.

    python3 bench/gpu/bench_train.py --binary build-gpu/apps/loglinear-train --out bench-train
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from gpu_mps import mps_daemon  # noqa: E402

def lm(d, T, layers, batch):
    """The Mamba-2 LM at width d and length T: V = 64 per head, K = d_state = 64 (fla's op, the peer,
    needs K a multiple of 64), d_inner = 2 d, SwiGLU 4 d."""
    return ["--model", "mamba2", "--task", "lm", "--length", str(T), "--d-model", str(d), "--layers", str(layers),
            "--heads", str(2 * d // 64), "--d-state", "64", "--expand", "2", "--batch", str(batch)]


# name, flags, gpu steps, cpu steps (the CPU gets fewer: its per-step time is what is compared)
CONFIGS = [
    ("mqar T=128 B=64 d=64 2 layers", ["--model", "task", "--task", "mqar", "--length", "128", "--pairs", "16",
                                       "--batch", "64", "--d-model", "64", "--layers", "2"], 2000, 40),
    ("LM d=256 T=512 B=16 6 layers", lm(256, 512, 6, 16), 50, 3),
    ("LM d=256 T=2048 B=4 6 layers", lm(256, 2048, 6, 4), 50, 3),
    ("LM d=512 T=512 B=16 6 layers", lm(512, 512, 6, 16), 50, 2),
    ("LM d=512 T=2048 B=8 6 layers", lm(512, 2048, 6, 8), 30, 1),
]


def run(binary, flags, device, steps, out, cpu_cores=None, corpus=None, gpu_flags=()):
    cmd = [binary] + flags + (["--corpus", corpus] if corpus and "lm" in flags else []) + [
        "--device", device, "--steps", str(steps), "--eval-every", str(steps),
        # A small validation set: its evaluation is outside train_time_s, but it costs wall time
        # (on 2 CPU cores, 64 LM windows of 2048 bytes take minutes).
        "--early-stop", "100", "--train-size", "2000", "--val-size", "8",
                              "--no-progress", "--json", out]
    if device == "cuda":
        cmd += list(gpu_flags)
    if device == "cpu":
        cmd += ["--threads", "2"]
        if cpu_cores:
            cmd = ["taskset", "-c", cpu_cores] + cmd
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_train: {' '.join(cmd)} failed:\n{p.stderr}")
    r = json.load(open(out))
    return {"device": device, "steps": steps, "train_time_s": r["train_time_s"],
            "steps_per_s": steps / r["train_time_s"], "tokens_per_s": r["train_tokens_per_s"],
            "wall_s": time.time() - t0, "peak_device_memory_bytes": r.get("peak_device_memory_bytes", 0),
            "device_name": r.get("device_name", ""), "final_val_loss": r["final_val_loss"], "command": " ".join(cmd)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="build-gpu/apps/loglinear-train")
    ap.add_argument("--out", default="bench-train")
    ap.add_argument("--cpu-cores", default="0,1", help="taskset core list of the CPU runs (2 cores)")
    ap.add_argument("--concurrent", type=int, default=8, help="GPU runs at once in the concurrency test")
    ap.add_argument("--skip-pairs", action="store_true", help="only the concurrency test")
    ap.add_argument("--corpus", default=None, help="--corpus of the LM runs (default: loglinear-train's)")
    ap.add_argument("--only", default=None, help="run only the configurations whose name contains this")
    ap.add_argument("--devices", default="cuda,cpu", help="which side(s) of each pair to run (cuda,cpu)")
    ap.add_argument("--gpu-flags", default="", help="more loglinear-train flags for the GPU runs (the concurrent ones too), e.g. "
                    "\"--matmul tf32\" (recorded in each row's command)")
    ap.add_argument("--concurrency", default="time_sliced,mps",
                    help="which concurrency tests to run: time_sliced, mps (empty: none)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []
    print("| configuration | GPU steps/s | GPU tokens/s | GPU time | GPU peak memory | CPU (2 cores) steps/s | "
          "CPU tokens/s | GPU / CPU |\n|---|---|---|---|---|---|---|---|", flush=True)
    for name, flags, gpu_steps, cpu_steps in ([] if args.skip_pairs else CONFIGS):
        if args.only and args.only not in name:
            continue
        devices = args.devices.split(",")
        g = run(args.binary, flags, "cuda", gpu_steps, os.path.join(args.out, "gpu.json"), corpus=args.corpus,
                gpu_flags=args.gpu_flags.split()) \
            if "cuda" in devices else None
        c = run(args.binary, flags, "cpu", cpu_steps, os.path.join(args.out, "cpu.json"), args.cpu_cores, args.corpus) \
            if "cpu" in devices else None
        rows.append({"config": name, "gpu": g, "cpu": c,
                     "speedup": g["steps_per_s"] / c["steps_per_s"] if g and c else None})
        gs = (f"{g['steps_per_s']:.1f} | {g['tokens_per_s']:.3g} | {g['train_time_s']:.2f} s / {gpu_steps} | "
              f"{g['peak_device_memory_bytes'] / 2**20:.1f} MiB") if g else "- | - | - | -"
        cs = f"{c['steps_per_s']:.3g} | {c['tokens_per_s']:.3g}" if c else "- | -"
        sp = f"{rows[-1]['speedup']:.0f}x" if rows[-1]["speedup"] else "-"
        print(f"| {name} | {gs} | {cs} | {sp} |", flush=True)
    # N tiny runs at once on one GPU, one process each: time-sliced, then under MPS.
    concurrent = {}
    modes = [m for m in args.concurrency.split(",") if m]
    for mps in [m == "mps" for m in modes]:
        with mps_daemon(mps) as running:
            if mps and not running:
                print("no MPS on this machine (nvidia-cuda-mps-control): skipped", flush=True)
                continue
            concurrent["mps" if mps else "time_sliced"] = run_concurrent(args, mps)
    json.dump({"rows": rows, "concurrent": concurrent}, open(os.path.join(args.out, "bench_train.json"), "w"), indent=2)


def run_concurrent(args, mps):
    name, flags, gpu_steps, _ = CONFIGS[0]
    t0 = time.time()
    procs = []
    for j in range(args.concurrent):
        out = os.path.join(args.out, f"concurrent{j}.json")
        cmd = [args.binary] + flags + ["--device", "cuda", "--steps", str(gpu_steps), "--eval-every", str(gpu_steps),
                                       "--early-stop", "100", "--train-size", "2000", "--val-size", "8",
                                       "--seed", str(j), "--no-progress", "--json", out] + args.gpu_flags.split()
        procs.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out))
    for p, _ in procs:
        _, err = p.communicate()  # drains stderr: a full pipe would block the child
        if p.returncode != 0:
            sys.exit("bench_train: a concurrent run failed: " + err.decode())
    wall = time.time() - t0
    each = [json.load(open(out)) for _, out in procs]
    conc = {"runs": args.concurrent, "steps_each": gpu_steps, "wall_s": wall, "mps": mps, "gpu_flags": args.gpu_flags,
            "train_time_s": [r["train_time_s"] for r in each],
            "peak_device_memory_bytes": [r["peak_device_memory_bytes"] for r in each]}
    print(f"{args.concurrent} concurrent {name} runs of {gpu_steps} steps{' under MPS' if mps else ''}: {wall:.1f} s wall, "
          f"train_time_s {min(conc['train_time_s']):.1f}-{max(conc['train_time_s']):.1f} each", flush=True)
    return conc


if __name__ == "__main__":
    main()
