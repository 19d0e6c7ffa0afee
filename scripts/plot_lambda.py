#!/usr/bin/python3
"""Heatmaps of lambda (tokens x levels, per layer) from `loglinear-train --dump-lambda` files and
a bar plot of the median decay exp(g) per layer from the runs' JSON results.

    /usr/bin/python3 scripts/plot_lambda.py --dumps lambda_fixed.json lambda_mlp_softplus.json \
        --runs experiments/mqar/*.json --out experiments/mqar

(the dumps from `loglinear-train ... --dump-lambda FILE`; the issue-13 report's lambda heatmaps
come from scripts/report.py)
"""
import argparse
import json
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dumps", nargs="+", required=True)
    ap.add_argument("--runs", nargs="*", default=[])
    ap.add_argument("--out", default=".", help="folder for the PNG files (default: the current one)")
    args = ap.parse_args()

    dumps = [json.load(open(p)) for p in args.dumps]
    layers = len(dumps[0]["lambda"])
    fig, axes = plt.subplots(layers, len(dumps), figsize=(4.5 * len(dumps), 3.2 * layers), squeeze=False)
    for col, d in enumerate(dumps):
        cfg = d["config"]
        for layer in range(layers):
            lam = np.array(d["lambda"][layer])  # [T, H*L]
            ax = axes[layer][col]
            im = ax.imshow(lam.T, aspect="auto", origin="lower", cmap="viridis")
            ax.set_title(f"{cfg['lambda']}, layer {layer} (KV {cfg['pairs']}, seed {cfg['seed']})", fontsize=9)
            ax.set_xlabel("token t"); ax.set_ylabel("level l")
            fig.colorbar(im, ax=ax)
    fig.tight_layout()
    path = os.path.join(args.out, "results_lambda_heatmaps.png")
    fig.savefig(path, dpi=110)
    print("wrote", path)

    if args.runs:
        runs = [json.load(open(p)) for p in args.runs]
        cells = {}
        for r in runs:
            c = r["config"]
            for layer, s in enumerate(r["decay_stats"]):
                cells.setdefault((c["lambda"], c["pairs"], layer), []).append(s["median"])
        keys = sorted(cells)
        if not keys:
            print("no decay_stats in the runs: no decay-median plot")
            return
        fig, ax = plt.subplots(figsize=(7, 3.5))
        # Every seed as a point over the mean bar: one outlying seed must stay visible.
        ax.bar(range(len(keys)), [np.mean(cells[k]) for k in keys], color="#9ecae1")
        for i, k in enumerate(keys):
            ax.plot([i] * len(cells[k]), cells[k], "o", color="#08519c", ms=3)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{m}\nKV{p} L{l}" for m, p, l in keys], fontsize=6)
        low = min(min(v) for v in cells.values())
        ax.set_ylabel("median exp(g) over tokens (bar: mean over seeds)"); ax.set_ylim(max(0.0, low - 0.05), 1.0)
        fig.tight_layout()
        path = os.path.join(args.out, "results_decay_medians.png")
        fig.savefig(path, dpi=110)
        print("wrote", path)


if __name__ == "__main__":
    main()
