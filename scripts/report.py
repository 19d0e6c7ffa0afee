#!/usr/bin/python3
"""Issue 13's statistics from a folder of loglinear-train run JSON (scripts/sweep.py --preset mqar13
and the other issue-13 presets): per cell and lambda mode, the solve rate with Fisher's exact test
against every other mode, accuracies at a common step and at the solve step with their spread and a
Mann-Whitney test, steps to solve, the lambda-adaptation ablation with a paired test, and the
plots; written as Markdown (tables) plus PNG files, and as JSON for whoever wants the numbers.

    /usr/bin/python3 scripts/report.py docs/results/issue13/exp13-v2/mqar13 --out docs/results/issue13/exp13-v2
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


def censored(steps):
    """Steps to solve with the runs that never solved placed after every solved run (infinity)."""
    return [math.inf if x is None else x for x in steps]


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


# The recall tasks: their size setting, its short name in cell keys, and its name in headings.
TASKS = {"mqar": ("pairs", "kv", "pairs"), "selective_copy": ("copy_tokens", "copy", "data tokens")}


def recall_tables(runs, task):
    size, short, label = TASKS[task]
    cells = {}
    for r in runs:
        c = r["config"]
        if c["task"] != task:
            continue
        cells.setdefault((c["length"], c[size], c.get("eval_len") or 0), []).append(r)
    lines, data = [], {}
    for key in sorted(cells):
        T, n, E = key
        # The preset's --min-steps, which every run reaches; without one, the last step all runs reached.
        common = (max(r["config"].get("min_steps", 0) for r in cells[key])
                  or min(r["history"][-1]["step"] for r in cells[key] if r["history"]))
        s = cell_summary(cells[key], common)
        data[f"T{T}_{short}{n}"] = s
        lines.append(f"\n### T = {T}, {n} {label} (evaluated also at {E or '-'}; common step S = {common})\n")
        lines.append("| lambda | n | solved | p (Fisher) vs fixed | vs mlp_softplus | best acc % | acc@S % | "
                     "p (MW) vs fixed | len2x@S % | p (MW) vs fixed | len2x@solve % | p (MW) vs fixed | "
                     "steps to solve (median) | p (MW) vs fixed |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for mode, v in s.items():
            k = sum(v["solved"])
            counts = lambda m: [sum(s[m]["solved"]), len(s[m]["solved"]) - sum(s[m]["solved"])] if m in s else None
            pf = fisher([k, len(v["solved"]) - k], counts("fixed")) if mode != "fixed" and "fixed" in s else None
            ps = (fisher([k, len(v["solved"]) - k], counts("mlp_softplus"))
                  if mode != "mlp_softplus" and "mlp_softplus" in s else None)
            pm = mann_whitney(v["acc_common"], s["fixed"]["acc_common"]) if mode != "fixed" and "fixed" in s else None
            # Length generalisation at the common step S: every run, solved or not.
            pc = mann_whitney(v["len_common"], s["fixed"]["len_common"]) if mode != "fixed" and "fixed" in s else None
            # Length generalisation at the solve step: solved runs only. Steps to solve: a run that
            # never solved ranks after every solved run (it is censored at the step cap), so the
            # test compares all seeds, not only the lucky ones.
            pl = (mann_whitney(v["len_solve"], s["fixed"]["len_solve"])
                  if mode != "fixed" and "fixed" in s else None)
            pt = (mann_whitney(censored(v["solve_steps"]), censored(s["fixed"]["solve_steps"]))
                  if mode != "fixed" and "fixed" in s else None)
            steps = [x for x in v["solve_steps"] if x is not None]
            lines.append(f"| {mode} | {len(v['seeds'])} | {k}/{len(v['seeds'])} | {p_text(pf)} | {p_text(ps)} | "
                         f"{ms(v['best'])} | {ms(v['acc_common'])} | {p_text(pm)} | {ms(v['len_common'])} | "
                         f"{p_text(pc)} | {ms(v['len_solve'])} | {p_text(pl)} | {int(np.median(steps)) if steps else '-'} | "
                         f"{p_text(pt)} |")
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


def plots(runs, data, out, task):
    size, short, label = TASKS[task]
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
                    n = int(key.split(short)[1])
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
        ax.set_title(f"T = {T}"); ax.set_xlabel(label); ax.set_ylabel("val accuracy at S (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout(); path = os.path.join(out, f"{task}_acc_vs_size.png"); fig.savefig(path, dpi=120); plt.close(fig)
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
                if c["task"] == task and f"T{c['length']}" == T and f"{short}{c[size]}" == n and c["lambda"] == mode:
                    h = r["history"]
                    ax.plot([x["step"] for x in h], [x["val_accuracy"] for x in h], color=f"C{i}", lw=.7, alpha=.6)
        ax.set_title(f"{T.replace('T', 'T = ')}, {n.replace(short, '')} {label}", fontsize=9)
        ax.set_xscale("log"); ax.set_ylim(-2, 102); ax.grid(alpha=.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=f"C{i}", label=m) for i, m in enumerate(MODES)]
    fig.legend(handles=handles, loc="lower right", fontsize=8)
    fig.tight_layout(); path = os.path.join(out, f"{task}_learning_curves.png"); fig.savefig(path, dpi=110); plt.close(fig)
    made.append(path)
    return made


def length_plot(data, out, task):
    """Length generalisation: accuracy at 2T when first solved at T, every solved seed a dot, one
    panel per cell (cells without a solved run are left out)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    size, short, label = TASKS[task]
    keys = [k for k, s in data.items() if any(x is not None for m in s.values() for x in m["len_solve"])]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(2.9 * len(keys), 3.2), squeeze=False, sharey=True)
    for ax, key in zip(axes[0], keys):
        s = data[key]
        for i, mode in enumerate(MODES):
            if mode not in s:
                continue
            vals = [v for v in s[mode]["len_solve"] if v is not None]
            ax.scatter([i + 0.08 * (j % 5 - 2) for j in range(len(vals))], vals, s=10, color=f"C{i}", alpha=.7)
            if vals:
                ax.plot([i - .3, i + .3], [np.mean(vals)] * 2, color=f"C{i}", lw=2)
            ax.text(i, -9, f"n={len(vals)}", ha="center", fontsize=7)
        T, n = key.split("_")
        ax.set_title(f"{T.replace('T', 'T = ')}, {n.replace(short, '')} {label}", fontsize=9)
        ax.set_xticks(range(len(MODES))); ax.set_xticklabels(MODES, rotation=35, fontsize=7)
        ax.set_ylim(-12, 102); ax.grid(alpha=.3, axis="y")
    axes[0][0].set_ylabel("accuracy at 2T when solved at T (%)")
    fig.tight_layout(); path = os.path.join(out, f"{task}_len2x_at_solve.png"); fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def lambda_heatmaps(runs, out, task):
    """Lambda after training, every seed: per cell one figure, a panel per layer, a row per (mode,
    seed), a column per level; the colour is the level's mean lambda over the validation tokens
    (log scale; the JSON's lambda_stats). Rows of unsolved runs are marked with a grey tick."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    size, short, label = TASKS[task]
    cells = {}
    for r in runs:
        c = r["config"]
        if c["task"] == task and r.get("lambda_stats"):
            cells.setdefault(f"T{c['length']}_{short}{c[size]}", []).append(r)
    made = []
    for key, rs in sorted(cells.items()):
        rs = sorted(rs, key=lambda r: (MODES.index(r["config"]["lambda"]) if r["config"]["lambda"] in MODES else 9,
                                       r["config"]["seed"]))
        layers = len(rs[0]["lambda_stats"])
        levels = max(len(layer) for r in rs for layer in r["lambda_stats"])
        fig, axes = plt.subplots(1, layers, figsize=(2.6 * layers + 1.2, 0.16 * len(rs) + 1.4), squeeze=False)
        for li, ax in enumerate(axes[0]):
            m = np.full((len(rs), levels), np.nan)
            for i, r in enumerate(rs):
                for lv, st in enumerate(r["lambda_stats"][li]):
                    m[i, lv] = max(st["mean"], 1e-4)
            im = ax.imshow(m, aspect="auto", cmap="viridis", norm=LogNorm(vmin=1e-3, vmax=max(10.0, np.nanmax(m))),
                           interpolation="nearest")
            ax.set_title(f"layer {li}", fontsize=8); ax.set_xlabel("level", fontsize=7)
            ax.set_xticks(range(levels)); ax.tick_params(labelsize=6)
            ax.set_yticks(range(len(rs)))
            ax.set_yticklabels([f"{r['config']['lambda']} s{r['config']['seed']}" +
                                ("" if r.get("solved_at_step") else " (-)") for r in rs] if li == 0 else [],
                               fontsize=5)
        fig.colorbar(im, ax=axes[0].tolist(), shrink=.8, label="mean lambda")
        fig.suptitle(f"{key}: lambda per level after training ((-) = not solved)", fontsize=9)
        path = os.path.join(out, f"{task}_lambda_{key}.png"); fig.savefig(path, dpi=110); plt.close(fig)
        made.append(path)
    return made


def verdicts(claims_path, everything):
    """The verdict table: one row per claim of claims.json (the preprint's number, written by hand
    from the sources), with ours computed here from the same statistics as the tables."""
    with open(claims_path) as f:
        claims = json.load(f)["claims"]
    lines = ["| claim | the sources | ours (mean ± std, n; p) | like for like? | verdict |", "|---|---|---|---|---|"]
    for c in claims:
        ours = "not run yet"
        verdict = "pending"
        if c.get("task") not in TASKS:  # the LM and decay studies: their own tables below
            if everything.get(c.get("task")):
                ours, verdict = "see the table of this study below", "see the report"
            lines.append(f"| {c['claim']} | {c['sources']} | {ours} | {c['like_for_like']} | {verdict} |")
            continue
        src = everything.get(c.get("task", ""), {}).get(c.get("cell", ""), {})
        if src and all(m in src for m in c["modes"]):
            parts, vals = [], {}
            for m in c["modes"]:
                v = src[m][c["metric"]]
                if c["metric"] == "solved":
                    vals[m] = v
                    parts.append(f"{m} {sum(v)}/{len(v)}")
                else:
                    vals[m] = [x for x in v if x is not None]
                    parts.append(f"{m} {ms(vals[m])} (n={len(vals[m])})")
            a, b = c["modes"][:2]
            if c["metric"] == "solved":
                p = fisher([sum(vals[a]), len(vals[a]) - sum(vals[a])], [sum(vals[b]), len(vals[b]) - sum(vals[b])])
                test = "Fisher"
            else:
                p = mann_whitney(vals[a], vals[b])
                test = "MW"
            ours = "; ".join(parts) + f"; p ({test}) = {p_text(p)}"
            mean = {m: (sum(vals[m]) / len(vals[m]) * 100 if c["metric"] == "solved" else np.mean(vals[m]))
                    if vals[m] else math.nan for m in c["modes"]}
            if "expect_min" in c:
                verdict = "holds" if all(mean[m] >= c["expect_min"] for m in c["modes"]) else "does not hold"
            elif "direction" in c:
                hi, lo = (b, a) if c["direction"] == "b>a" else (a, b)
                if p is not None and p < 0.05:
                    verdict = "holds" if mean[hi] > mean[lo] else "contradicted"
                else:
                    verdict = "not significant"
        lines.append(f"| {c['claim']} | {c['sources']} | {ours} | {c['like_for_like']} | {verdict} |")
    return lines


def final_bpb(r):
    return r.get("final_val_bits_per_byte")


def lm_tables(runs):
    """The lambda modes on the LM: held-out bits per byte at the end, mean ± std over seeds,
    Welch's t-test against fixed (3 seeds: a rank test cannot reach p < 0.1), and curves."""
    by_mode = {}
    for r in runs:
        by_mode.setdefault(r["config"]["lambda"], []).append(r)
    lines = ["| lambda | seeds | held-out bits/byte (final) | per-byte perplexity 2^bpb | per seed | p (Welch) vs fixed | "
             "train loss (last) | best held-out step |", "|---|---|---|---|---|---|---|---|"]
    for mode in MODES:
        rs = sorted(by_mode.get(mode, []), key=lambda r: r["config"]["seed"])
        if not rs:
            continue
        b = [final_bpb(r) for r in rs]
        p = None
        if mode != "fixed" and "fixed" in by_mode and len(rs) > 1 and len(by_mode["fixed"]) > 1:
            p = float(stats.ttest_ind(b, [final_bpb(r) for r in by_mode["fixed"]], equal_var=False)[1])
        best = [min(r["history"], key=lambda h: h["val_loss"])["step"] for r in rs]
        ppl = [2.0 ** x for x in b]
        lines.append(f"| {mode} | {len(rs)} | {np.mean(b):.4f} ± {np.std(b, ddof=1) if len(b) > 1 else 0:.4f} | "
                     f"{np.mean(ppl):.4f} ± {np.std(ppl, ddof=1) if len(ppl) > 1 else 0:.4f} | "
                     f"{', '.join(f'{x:.4f}' for x in b)} | {p_text(p)} | "
                     f"{np.mean([r['last_train_loss'] for r in rs]):.4f} | {', '.join(map(str, best))} |")
    return lines


def lm_curves(runs, out, name, label):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.8))
    groups = sorted({label(r) for r in runs})
    for i, g in enumerate(groups):
        for r in runs:
            if label(r) != g:
                continue
            h = r["history"]
            ax.plot([x["step"] for x in h], [x["train_loss"] / math.log(2) for x in h], color=f"C{i}", lw=.6, alpha=.5,
                    ls=":")
            ax.plot([x["step"] for x in h], [x["val_bits_per_byte"] for x in h], color=f"C{i}", lw=1)
    handles = [plt.Line2D([], [], color=f"C{i}", label=g) for i, g in enumerate(groups)]
    handles += [plt.Line2D([], [], color="k", lw=1, label="held out"), plt.Line2D([], [], color="k", ls=":", label="train")]
    ax.legend(handles=handles, fontsize=7); ax.grid(alpha=.3)
    ax.set_xlabel("step"); ax.set_ylabel("bits per byte")
    fig.tight_layout(); path = os.path.join(out, name); fig.savefig(path, dpi=120); plt.close(fig)
    return path


def decay_label(r):
    c = r["config"]
    return f"{c['decay']} p={c['decay_p']}" if c["decay"] == "simple_decay" and c.get("decay_p") else c["decay"]


def decay_tables(runs):
    """The decay study: held-out bits per byte and the trained median decay exp(g), per decay."""
    by = {}
    for r in runs:
        by.setdefault(decay_label(r), []).append(r)
    lines = ["| decay | seeds | held-out bits/byte (final) | per seed | median exp(g) after training, per layer |",
             "|---|---|---|---|---|"]
    for lab in sorted(by):
        rs = sorted(by[lab], key=lambda r: r["config"]["seed"])
        b = [final_bpb(r) for r in rs]
        med = [", ".join(f"{st['median']:.3f}" for st in r.get("decay_stats", [])) for r in rs]
        lines.append(f"| {lab} | {len(rs)} | {np.mean(b):.4f} ± {np.std(b, ddof=1) if len(b) > 1 else 0:.4f} | "
                     f"{', '.join(f'{x:.4f}' for x in b)} | {'; '.join(med)} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="folders of run JSON")
    ap.add_argument("--out", required=True, help="folder for tables.md, stats.json and the PNG plots")
    ap.add_argument("--claims", help="claims.json: the sources' claims, for a verdict table at the top of tables.md")
    ap.add_argument("--results", help="also write this summary page (docs/RESULTS.md): --notes, the verdict table, "
                                      "the headline figures and a link to the full tables")
    ap.add_argument("--notes", help="Markdown prose placed at the top of --results")
    args = ap.parse_args()
    if args.results and not (args.claims and args.notes):
        ap.error("--results needs --claims and --notes")
    runs = [r for f in args.folders for r in load(f)]
    if not runs:
        sys.exit("report.py: no run JSON in " + ", ".join(args.folders))
    os.makedirs(args.out, exist_ok=True)
    commits = sorted({r["git_commit"] for r in runs})
    devices = sorted({r.get("device_name", "?") for r in runs})
    lines = [f"Generated by `scripts/report.py` from {len(runs)} runs; commits: {', '.join(commits)}; "
             f"devices: {', '.join(devices)}.", ""]
    everything = {"commits": commits, "devices": devices}
    for task, title in (("mqar", "MQAR"), ("selective_copy", "Selective copying")):
        tab, data = recall_tables(runs, task)
        if not tab:
            continue
        everything[task] = data
        lines += [f"## {title}", ""] + tab + ["", f"## {title}: lambda-adaptation ablation (solved runs)", ""]
        lines += ablation_table(data)
        figs = plots(runs, data, args.out, task) + [length_plot(data, args.out, task)]
        figs += lambda_heatmaps(runs, args.out, task)
        lines += [""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in figs if p]
    lms = [r for r in runs if r["config"]["task"] == "lm"]
    # The decay study varies the decay; the lambda comparison varies lambda under one decay.
    decay_study = [r for r in lms if r["config"]["model"] == "task"]
    lambda_lm = [r for r in lms if r["config"]["model"] == "mamba2"]
    everything["lm"], everything["decay"] = len(lambda_lm), len(decay_study)
    if lambda_lm:
        lines += ["", "## Language model: lambda modes", ""] + lm_tables(lambda_lm)
        path = lm_curves(lambda_lm, args.out, "lm_curves.png", lambda r: r["config"]["lambda"])
        lines += ["", f"![{os.path.basename(path)}]({os.path.basename(path)})"]
    if decay_study:
        lines += ["", "## Decay study (small byte-level LM)", ""] + decay_tables(decay_study)
        path = lm_curves(decay_study, args.out, "decay_curves.png", decay_label)
        lines += ["", f"![{os.path.basename(path)}]({os.path.basename(path)})"]
    if args.claims:
        lines[2:2] = ["## Verdicts (claims of docs/results/issue13/claims.json)", ""] + verdicts(args.claims, everything) + [""]
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(everything, f, indent=1)
    print(f"report.py: {len(runs)} runs -> {args.out}/tables.md, stats.json")
    if args.results:
        rel = os.path.relpath(args.out, os.path.dirname(os.path.abspath(args.results)))
        page = [open(args.notes).read().rstrip(), "", "## Verdicts", "",
                f"Generated by `scripts/report.py` from {len(runs)} runs ({', '.join(commits)}; "
                f"{', '.join(devices)}); the claims and how each is tested: `docs/results/issue13/claims.json`.", ""]
        page += verdicts(args.claims, everything)
        page += ["", "## Headline figures", ""]
        for name, caption in (("mqar_len2x_at_solve.png", "Accuracy at 2T when first solved at T, every solved seed"),
                              ("mqar_acc_vs_size.png", "Accuracy at the common step against the number of pairs"),
                              ("mqar_learning_curves.png", "Learning curves, every seed")):
            if os.path.exists(os.path.join(args.out, name)):
                page += [f"![{caption}]({rel}/{name})", ""]
        page += [f"Every table (per seed, p-values, steps to solve, the lambda-adaptation ablation) and figure "
                 f"(lambda heatmaps of every seed): `docs/{rel}/tables.md`.", ""]
        with open(args.results, "w") as f:
            f.write("\n".join(page))
        print(f"report.py: summary -> {args.results}")


if __name__ == "__main__":
    main()
