"""Merges the outputs of bench_cuda_chunked, bench_sdpa.py and bench_fla.py (one machine session)
into the side-by-side table of bench/RESULTS-gpu.md: ms, tokens/s, ours/fla, ours/SDPA and the
fraction of the measured bf16 matmul ceiling that our forward reaches.
    python3 bench/gpu/merge_results.py OURS.md SDPA.md [FLA.md]"""
import re
import sys


def rows(path):
    """The data rows of every Markdown table in a file, as lists of stripped cells."""
    out = []
    for line in open(path):
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells and cells[0] not in ("storage", "D"):
                out.append(cells)
    return out


def number(cell):
    try:
        return float(cell)
    except ValueError:
        return None


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    ours = {}
    for c in rows(argv[1]):  # storage, D, T, B, fwd, fwd+bwd, Mtok/s, fwd GFLOP/s
        ours[(c[0], int(c[1]), int(c[2]))] = {"fwd": float(c[4]), "both": float(c[5]), "gflops": float(c[7])}
    text = open(argv[2]).read()
    ceiling = re.search(r"GEMM 8192\^3 bf16: (\d+) TFLOP/s", text)
    copy = re.search(r"device copy: (\d+) GB/s", text)
    sdpa = {(int(c[0]), int(c[1])): float(c[4]) for c in rows(argv[2]) if len(c) >= 5}
    fla = {}
    if len(argv) == 4:
        for c in rows(argv[3]):  # D, T, B, fwd, fwd+bwd, Mtok/s (or "failed: ...")
            if number(c[3]) is not None and number(c[4]) is not None:
                fla[(int(c[0]), int(c[1]))] = (float(c[3]), float(c[4]))
    bf16_peak = float(ceiling.group(1)) if ceiling else None
    print(f"# side by side: bf16 matmul ceiling {ceiling.group(1) if ceiling else '?'} TFLOP/s, "
          f"copy {copy.group(1) if copy else '?'} GB/s; ms per call, B*T = 32768, H = 16, G = 1\n")
    print("| D | T | ours bf16 fwd | fla fwd | ours bf16 fwd+bwd | fla fwd+bwd | SDPA flash fwd+bwd | "
          "ours/fla fwd+bwd | ours/SDPA | ours Mtok/s | fla Mtok/s | ours fwd % of bf16 peak | ours fp32 fwd+bwd |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda x, spec=".2f": "-" if x is None else format(x, spec)
    for (storage, D, T), r in sorted(ours.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        if storage != "bf16":
            continue
        f = fla.get((D, T))
        s = sdpa.get((D, T))
        fp32 = ours.get(("fp32", D, T))
        tokens = 32768
        print(f"| {D} | {T} | {r['fwd']:.2f} | {fmt(f[0] if f else None)} | {r['both']:.2f} | "
              f"{fmt(f[1] if f else None)} | {fmt(s)} | {fmt(r['both'] / f[1] if f else None)} | "
              f"{fmt(r['both'] / s if s else None)} | {tokens / r['both'] / 1e3:.2f} | "
              f"{fmt(tokens / f[1] / 1e3 if f else None)} | "
              f"{fmt(100 * r['gflops'] / 1e3 / bf16_peak if bf16_peak else None)} | "
              f"{fmt(fp32['both'] if fp32 else None)} |")


if __name__ == "__main__":
    main(sys.argv)
