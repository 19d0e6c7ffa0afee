#!/usr/bin/env python3
"""Draws which Fenwick levels cross a rank boundary in context parallelism (docs/context_parallel.md §7).

For one sequence of T tokens split over R ranks at chunk boundaries (cp_segment), each row of the
figure is the state after a rank's segment, S(a_j): its non-empty buckets drawn over the tokens they
hold, labelled with their level, filled with the colours of the ranks that own those tokens. An
arrow goes from each bucket of S(a_j) to the bucket of S(a_{j+1}) it lands in, whole (eq. 2), and
the merge map m(l) of eq. 3 is written beside each transition.

The level function, the buckets and the split are re-implemented here from core/fenwick.cpp and
context_parallel.cpp; check() verifies them against SPEC.md §2's recursive definition, the
partition and merge properties (eq. 2) and the worked example of docs/context_parallel.md §7, and
runs before every plot. `--check` runs only that (no matplotlib; a CTest test in tests/scripts/).

    MPLBACKEND=Agg /usr/bin/python3 scripts/plot_cp_boundaries.py          # writes docs/context_parallel_boundaries.svg
    /usr/bin/python3 scripts/plot_cp_boundaries.py --check
"""
import argparse
import os
import sys


def level(t, s):
    """ell(t, s) = 0 if s == t else bit_width(t XOR s) (SPEC.md §2; core/fenwick.cpp, level)."""
    assert 0 <= s <= t
    return (t ^ s).bit_length()


def buckets(t):
    """The non-empty buckets (level, begin, end) of the prefix [0, t], level 0 first (core/fenwick.cpp)."""
    out = [(0, t, t + 1)]
    for l in range(1, t.bit_length() + 1):
        h = 1 << (l - 1)
        if t & h:
            cleared = t & ~(h - 1)  # t with its low l-1 bits cleared
            out.append((l, cleared - h, cleared))
    return out


def merge_map(n, n_out):
    """m(l) of eq. 3 for the tokens [n, n_out): {level of a bucket of B(n-1): level it lands in at n_out-1}."""
    return {l: level(n_out - 1, begin) for l, begin, _ in buckets(n - 1)} if n > 0 else {}


def cp_segment(T, C, R, r):
    """Rank r's tokens [begin, end): the ceil(T / C) chunks dealt in contiguous runs (context_parallel.cpp)."""
    N = (T + C - 1) // C
    return min(T, (r * N // R) * C), min(T, ((r + 1) * N // R) * C)


def check():
    """Checks the functions above against independent definitions and the documented example."""
    def spec_level(t, s):  # SPEC.md §2: strip 2^msb(t) from both and recurse
        if s == t:
            return 0
        top = 1 << (t.bit_length() - 1)
        return t.bit_length() if s < top else spec_level(t - top, s - top)

    for t in range(128):
        tokens = []
        for l, begin, end in buckets(t):
            assert end - begin == (1 if l == 0 else 1 << (l - 1)), (t, l)
            tokens += range(begin, end)
            for s in range(begin, end):
                assert level(t, s) == spec_level(t, s) == l, (t, s, l)
        assert sorted(tokens) == list(range(t + 1)), t  # the buckets partition [0, t]
    # Eq. 2: every bucket of n - 1 lies whole in the bucket m(l) of n' - 1.
    for n in range(1, 65):
        for n_out in range(n, 65):
            m = merge_map(n, n_out)
            at = {l: (b, e) for l, b, e in buckets(n_out - 1)}
            for l, begin, end in buckets(n - 1):
                b, e = at[m[l]]
                assert b <= begin and end <= e, (n, n_out, l)
    # docs/context_parallel.md §7: at n = 12 the buckets of t = 11 are {11} at level 0, {10} at 1,
    # [8, 10) at 2, [0, 8) at 4; into n' = 16 the first three land in level 3, [0, 8) in level 4.
    assert buckets(11) == [(0, 11, 12), (1, 10, 11), (2, 8, 10), (4, 0, 8)]
    assert merge_map(12, 16) == {0: 3, 1: 3, 2: 3, 4: 4}
    # cp_segment: contiguous, covering, inner boundaries at multiples of C, any R.
    for T in range(1, 40):
        for C in (1, 2, 4, 8, 64):
            for R in range(1, 7):
                segs = [cp_segment(T, C, R, r) for r in range(R)]
                assert segs[0][0] == 0 and segs[-1][1] == T
                assert all(segs[r][1] == segs[r + 1][0] for r in range(R - 1))
                assert all(b % C == 0 for b, _ in segs)
    print("plot_cp_boundaries: level, buckets, merge map (eq. 2, §7's example) and cp_segment check out")


def draw(ax, T, C, R, colours):
    """One panel: the states after each rank's segment, their buckets and the merge arrows."""
    segs = [cp_segment(T, C, R, r) for r in range(R)]
    owner = [next(r for r, (b, e) in enumerate(segs) if b <= t < e) for t in range(T)]
    ends = [e for _, e in segs if e > 0]
    row_y = {n: -i for i, n in enumerate(ends)}
    height = 0.5
    for n in ends:
        y = row_y[n]
        for t in range(n):  # each token in its rank's colour, then the bucket outlines on top
            ax.add_patch(plt.Rectangle((t, y - height / 2), 1, height, color=colours[owner[t]], alpha=0.35, lw=0))
        for l, begin, end in buckets(n - 1):
            ax.add_patch(plt.Rectangle((begin, y - height / 2), end - begin, height, fill=False, lw=1.4, ec="black"))
            ax.text((begin + end) / 2, y, f"{l}", ha="center", va="center", fontsize=9,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
        ax.text(-0.4, y, f"S({n})", ha="right", va="center", fontsize=9)
    for n, n_out in zip(ends, ends[1:]):
        m = merge_map(n, n_out)
        at = {l: (b, e) for l, b, e in buckets(n_out - 1)}
        for l, begin, end in buckets(n - 1):
            x = (begin + end) / 2
            ax.annotate("", xy=(x, row_y[n_out] + height / 2), xytext=(x, row_y[n] - height / 2),
                        arrowprops=dict(arrowstyle="->", lw=0.9, color="0.25"))
            assert at[m[l]][0] <= begin and end <= at[m[l]][1]  # eq. 2: the arrow ends inside its bucket
        text = "  ".join(f"{l}→{m[l]}" for l in sorted(m))
        ax.text(T + 0.4, (row_y[n] + row_y[n_out]) / 2, f"m(l) over [{n},{n_out}):\n{text}", ha="left",
                va="center", fontsize=8)
    for b, _ in segs[1:]:
        ax.axvline(b, color="0.4", ls="--", lw=0.8, zorder=0)
    ax.set_xlim(-2.2, T + 7.5)
    ax.set_ylim(row_y[ends[-1]] - 0.6, 0.6)
    ax.set_xticks([t + 0.5 for t in range(T)])
    ax.set_xticklabels([str(t) for t in range(T)], fontsize=7)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    spans = ", ".join(f"rank {r}: [{b},{e})" for r, (b, e) in enumerate(segs))
    ax.set_title(f"T = {T}, C = {C}, R = {R}   ({spans})", fontsize=9, loc="left")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the level functions, draw nothing")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                                                      "context_parallel_boundaries.svg"))
    parser.add_argument("-T", type=int, default=16, help="tokens of the sequence")
    parser.add_argument("-C", type=int, default=2, help="chunk size (a power of two)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 3, 4], help="one panel per rank count")
    args = parser.parse_args()
    check()
    if args.check:
        return 0
    if args.T < 1 or args.C < 1 or args.C & (args.C - 1) or any(R < 1 for R in args.ranks):
        parser.error("expected T >= 1, C a power of two >= 1 and rank counts >= 1")

    global plt
    import matplotlib
    matplotlib.rcParams["svg.hashsalt"] = "loglinear"  # the same SVG on every run
    matplotlib.rcParams["svg.fonttype"] = "none"       # text stays text
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10").colors
    rows = [len([1 for r in range(R) if cp_segment(args.T, args.C, R, r)[1] > 0]) for R in args.ranks]
    fig, axes = plt.subplots(len(args.ranks), 1, figsize=(11, 1.0 + 0.85 * sum(rows)),
                             gridspec_kw={"height_ratios": rows}, squeeze=False)
    for ax, R in zip(axes[:, 0], args.ranks):
        draw(ax, args.T, args.C, R, colours)
    fig.suptitle("Fenwick levels across rank boundaries: each row is the state after a rank's segment, "
                 "a box a bucket with its level;\nan arrow takes a bucket to the level it lands in "
                 "(eqs. 2-3); colours are the ranks owning the tokens", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, metadata={"Date": None})
    print(f"wrote {os.path.normpath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
