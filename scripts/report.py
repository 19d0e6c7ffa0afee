#!/usr/bin/python3
"""Issue 13's statistics from a folder of loglinear-train run JSON (scripts/sweep.py --preset mqar13
and the other issue-13 presets): per cell and lambda mode, the solve rate with Fisher's exact test
against every other mode, accuracies at a common step and at the solve step with their spread and a
Mann-Whitney test, steps to solve, the lambda-adaptation ablation with a paired test, and the
plots; written as Markdown (tables) plus PNG files, and as JSON for whoever wants the numbers.

    /usr/bin/python3 scripts/report.py docs/results/issue13/mqar13 --out docs/results/issue13
    /usr/bin/python3 scripts/report.py --help

Definitions (stated in the report too):
  solved       the run's validation accuracy reached 99 % at some evaluation (solved_at_step);
  acc@S        validation accuracy at step S = the preset's --min-steps (every run trains to S);
  len2x@S      accuracy at the evaluation length (2 T) at step S;
  len2x@solve  accuracy at 2 T at the step where the run was first solved (solved runs only);
  p (Fisher)   two-sided exact test of the solve counts of two modes in one cell;
  p (MW)       two-sided Mann-Whitney U test of a per-seed value between two modes (exact for
               small samples without ties, as scipy chooses);
  ablation     accuracy with lambda replaced by its per-level mean over all tokens (token_mean)
               or per position type (type_mean), minus the true accuracy; p from a two-sided
               exact sign-flip permutation test of the mean difference over seeds (all 2^n sign
               patterns; with n seeds the smallest possible p is 2 / 2^n).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
from scipy import stats

MODES = ["fixed", "constant", "mlp_softplus", "mlp_softmax"]


def load(folder):
    runs = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                runs.append(json.load(f))
    return runs


def at_step(run, step, key):
    """The history value `key` at exactly `step` (None if the run has no evaluation there)."""
    for row in run["history"]:
        if row["step"] == step:
            return row.get(key)
    return None


def ms(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    sd = float(np.std(xs, ddof=1)) if len(xs) > 1 else 0.0
    return f"{np.mean(xs):.1f} ± {sd:.1f}"


def p_text(p):
    return "-" if p is None or (isinstance(p, float) and math.isnan(p)) else (f"{p:.2g}" if p >= 1e-3 else "<0.001")


def fisher(a, b):
    """Two-sided Fisher exact p of (solved, unsolved) counts a and b."""
    if sum(a) == 0 or sum(b) == 0:
        return None
    return float(stats.fisher_exact([a, b], alternative="two-sided")[1])


def sign_flip(d):
    """Two-sided exact permutation p of mean(d) = 0 for paired differences d (every sign pattern)."""
    d = np.asarray([x for x in d if x is not None], dtype=float)
    if len(d) < 2 or not np.any(d != 0) or len(d) > 20:
        return None
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * len(d))).reshape(len(d), -1).T
    null = np.abs(signs @ np.abs(d))
    return float(np.mean(null >= abs(d.sum()) - 1e-12))


def mann_whitney(x, y):
    x, y = [v for v in x if v is not None], [v for v in y if v is not None]
    if len(x) < 2 or len(y) < 2 or (len(set(x)) == 1 and set(x) == set(y)):
        return None
    return float(stats.mannwhitneyu(x, y, alternative="two-sided")[1])


def cell_summary(runs, common_step):
    """Per mode: the values of every seed (sorted by seed) and their summaries."""
    out = {}
    for mode in MODES:
        rs = sorted((r for r in runs if r["config"]["lambda"] == mode), key=lambda r: r["config"]["seed"])
        if not rs:
            continue
        solved = [r.get("solved_at_step") is not None for r in rs]
        out[mode] = {
            "seeds": [r["config"]["seed"] for r in rs],
            "solved": solved,
            "solve_steps": [r.get("solved_at_step") for r in rs],
            "best": [r["best_accuracy"] for r in rs],
            "acc_common": [at_step(r, common_step, "val_accuracy") for r in rs],
            "len_common": [at_step(r, common_step, "eval_len_accuracy") for r in rs],
            "len_solve": [at_step(r, r["solved_at_step"], "eval_len_accuracy") if r.get("solved_at_step") else None
                          for r in rs],
            "steps_run": [r["steps_run"] for r in rs],
            "ablation": [r.get("lambda_ablation") for r in rs],
            "commits": sorted({r["git_commit"] for r in rs}),
            "devices": sorted({r.get("device_name", "?") for r in rs}),
        }
    return out


def mqar_tables(runs):
    cells = {}
    for r in runs:
        c = r["config"]
        if c["task"] != "mqar":
            continue
        cells.setdefault((c["length"], c["pairs"], c.get("eval_len") or 0), []).append(r)
    lines, data = [], {}
    for key in sorted(cells):
        T, n, E = key
        # The preset's --min-steps, which every run reaches; without one, the last step all runs reached.
        common = (max(r["config"].get("min_steps", 0) for r in cells[key])
                  or min(r["history"][-1]["step"] for r in cells[key] if r["history"]))
        s = cell_summary(cells[key], common)
        data[f"T{T}_kv{n}"] = s
        lines.append(f"\n### T = {T}, {n} pairs (evaluated also at {E or '-'}; common step S = {common})\n")
        lines.append("| lambda | n | solved | p (Fisher) vs fixed | vs mlp_softplus | best acc % | acc@S % | "
                     "p (MW) vs fixed | len2x@S % | len2x@solve % | steps to solve (median) |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for mode, v in s.items():
            k = sum(v["solved"])
            counts = lambda m: [sum(s[m]["solved"]), len(s[m]["solved"]) - sum(s[m]["solved"])] if m in s else None
            pf = fisher([k, len(v["solved"]) - k], counts("fixed")) if mode != "fixed" and "fixed" in s else None
            ps = (fisher([k, len(v["solved"]) - k], counts("mlp_softplus"))
                  if mode != "mlp_softplus" and "mlp_softplus" in s else None)
            pm = mann_whitney(v["acc_common"], s["fixed"]["acc_common"]) if mode != "fixed" and "fixed" in s else None
            steps = [x for x in v["solve_steps"] if x is not None]
            lines.append(f"| {mode} | {len(v['seeds'])} | {k}/{len(v['seeds'])} | {p_text(pf)} | {p_text(ps)} | "
                         f"{ms(v['best'])} | {ms(v['acc_common'])} | {p_text(pm)} | {ms(v['len_common'])} | "
                         f"{ms(v['len_solve'])} | {int(np.median(steps)) if steps else '-'} |")
        lines.append("\nPer seed (seed: acc@S / len2x@S / solved at):\n")
        for mode, v in s.items():
            cellsx = [f"{sd}: {a if a is None else round(a, 1)} / {b if b is None else round(b, 1)} / {st or '-'}"
                      for sd, a, b, st in zip(v["seeds"], v["acc_common"], v["len_common"], v["solve_steps"])]
            lines.append(f"- {mode}: " + "; ".join(cellsx))
    return lines, data


def ablation_table(data):
    lines = ["| cell | lambda | runs (solved) | true acc % | token_mean - true | p | type_mean - true | p |",
             "|---|---|---|---|---|---|---|---|"]
    for cell, s in data.items():
        for mode in ("fixed", "mlp_softplus", "mlp_softmax", "constant"):
            if mode not in s:
                continue
            abl = [a for a, ok in zip(s[mode]["ablation"], s[mode]["solved"]) if a and ok]
            if not abl:
                continue
            true = [a["true"]["accuracy"] for a in abl]
            row = [cell, mode, str(len(abl)), ms(true)]
            for key in ("token_mean", "type_mean"):
                d = [a[key]["accuracy"] - a["true"]["accuracy"] for a in abl]
                p = sign_flip(d)
                row += [ms(d), p_text(p)]
            lines.append("| " + " | ".join(row) + " |")
    return lines


def plots(runs, data, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    # Accuracy at the common step against pairs, per training length, every seed as a dot.
    lengths = sorted({int(k.split("_")[0][1:]) for k in data})
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.4), squeeze=False)
    for ax, T in zip(axes[0], lengths):
        for i, mode in enumerate(MODES):
            xs, ys = [], []
            for key, s in data.items():
                if key.startswith(f"T{T}_") and mode in s:
                    n = int(key.split("kv")[1])
                    vals = [v for v in s[mode]["acc_common"] if v is not None]
                    ax.scatter([n * 2 ** (0.06 * (i - 1.5))] * len(vals), vals, s=8, alpha=.5, color=f"C{i}")
                    if vals:
                        xs.append(n); ys.append(np.mean(vals))
            if xs:
                order = np.argsort(xs)
                ax.plot(np.array(xs)[order], np.array(ys)[order], marker="o", color=f"C{i}", label=mode)
        if ax.has_data():
            ax.set_xscale("log", base=2)
        ax.set_ylim(-2, 102); ax.grid(alpha=.3)
        ax.set_title(f"T = {T}"); ax.set_xlabel("KV pairs"); ax.set_ylabel("val accuracy at S (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout(); path = os.path.join(out, "mqar_acc_vs_pairs.png"); fig.savefig(path, dpi=120); plt.close(fig)
    made.append(path)
    # Learning curves, every seed, one panel per cell.
    keys = list(data)
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        T, n = key.split("_")
        for i, mode in enumerate(MODES):
            for r in runs:
                c = r["config"]
                if c["task"] == "mqar" and f"T{c['length']}" == T and f"kv{c['pairs']}" == n and c["lambda"] == mode:
                    h = r["history"]
                    ax.plot([x["step"] for x in h], [x["val_accuracy"] for x in h], color=f"C{i}", lw=.7, alpha=.6)
        ax.set_title(f"{T.replace('T', 'T = ')}, {n.replace('kv', '')} pairs", fontsize=9)
        ax.set_xscale("log"); ax.set_ylim(-2, 102); ax.grid(alpha=.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=f"C{i}", label=m) for i, m in enumerate(MODES)]
    fig.legend(handles=handles, loc="lower right", fontsize=8)
    fig.tight_layout(); path = os.path.join(out, "mqar_learning_curves.png"); fig.savefig(path, dpi=110); plt.close(fig)
    made.append(path)
    return made


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="folders of run JSON")
    ap.add_argument("--out", required=True, help="folder for tables.md, stats.json and the PNG plots")
    args = ap.parse_args()
    runs = [r for f in args.folders for r in load(f)]
    if not runs:
        sys.exit("report.py: no run JSON in " + ", ".join(args.folders))
    os.makedirs(args.out, exist_ok=True)
    commits = sorted({r["git_commit"] for r in runs})
    devices = sorted({r.get("device_name", "?") for r in runs})
    lines = [f"Generated by `scripts/report.py` from {len(runs)} runs; commits: {', '.join(commits)}; "
             f"devices: {', '.join(devices)}.", ""]
    mq, data = mqar_tables(runs)
    if mq:
        lines += ["## MQAR", ""] + mq + ["", "## Lambda-adaptation ablation (solved runs)", ""] + ablation_table(data)
        made = plots(runs, data, args.out)
        lines += [""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in made]
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump({"commits": commits, "devices": devices, "mqar": data}, f, indent=1)
    print(f"report.py: {len(runs)} runs -> {args.out}/tables.md, stats.json")


if __name__ == "__main__":
    main()
