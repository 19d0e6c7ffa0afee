"""Decoding from PyTorch, ours beside fla's, in one sitting (issue 14's decode comparison):
loglinear.torch.decode_step under torch.no_grad (the device decoding kernels, the state staying
on the GPU; validate=False) against fla.ops.log_linear_attn.chunk_log_linear_attn called on one
token with its initial_state (fla has no decode step: it re-runs its chunk kernel per token).
Each stream first gets a prefill of t tokens (each side its own op), then `--steps` tokens are
decoded one at a time; the figure is the wall time per token (all B streams), CUDA-synchronised.
Ours also as loglinear.torch.Decoder with one step captured in a CUDA graph (inputs copied into
its static tensors, then a replay per token).
H = 16, q and k shared by the heads (G = 1: fla's layout), K = V = D; ours in float32, fla in
bfloat16 (its float32 path is not what its users run). fla is not a dependency:
    git --git-dir=<mirror> archive HEAD fla | tar -x -C .peer
    FLA_PATH=.peer python3 bench/gpu/bench_decode_torch.py --json decode_torch.json
Without fla (or if its call fails) the fla column says why and ours is still measured. Each fla
point runs in a child process (this script with --fla-point B,t): a fault inside fla's kernels
(an illegal memory access poisons the CUDA context for good) then costs that cell only."""
import argparse
import json
import os
import subprocess
import sys
import types

import torch

from cuda_timing import decoder_graph_ms, wall_ms  # bench/gpu/, the script's folder

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--positions", default="64,1024,16384", help="prefill lengths t (comma-separated)")
ap.add_argument("--batches", default="1,16", help="streams B (comma-separated)")
ap.add_argument("--dim", type=int, default=64, help="K = V")
ap.add_argument("--steps", type=int, default=100, help="decoded tokens timed after each prefill")
ap.add_argument("--json", help="write the rows here")
ap.add_argument("--fla-point", metavar="B,t", help=argparse.SUPPRESS)  # the child process of one fla cell
args = ap.parse_args()

fla_op, fla_error = None, None
try:
    sys.path.insert(0, os.environ.get("FLA_PATH", ".peer"))
    try:
        import einops  # noqa: F401
    except ModuleNotFoundError:
        def _reduce(x, pattern, op, g, h):
            assert pattern == "b t (g h) k -> b t g k" and op == "sum", pattern
            return x.unflatten(2, (g, h)).sum(3)
        sys.modules["einops"] = types.SimpleNamespace(reduce=_reduce)
    import fla  # noqa: E402
    ops = types.ModuleType("fla.ops"); ops.__path__ = [os.path.join(fla.__path__[0], "ops")]
    sys.modules["fla.ops"] = ops
    from fla.ops.log_linear_attn import chunk_log_linear_attn as fla_op  # noqa: E402
except Exception as e:  # noqa: BLE001 (reported in the table)
    fla_error = f"fla not importable: {type(e).__name__}: {e}"


def num_levels(T):
    return (T - 1).bit_length() + 1


H, D, dev = 16, args.dim, "cuda"


def inputs(B, t):
    """The inputs of one cell, the same in the parent (ours) and in fla's child process."""
    T = t + args.steps
    L = num_levels(T + 1)
    gen = torch.Generator(device=dev).manual_seed(t + B)
    q = torch.randn(B, T, 1, D, device=dev, generator=gen) * 0.1
    k = torch.randn(B, T, 1, D, device=dev, generator=gen) * 0.1
    v = torch.randn(B, T, H, D, device=dev, generator=gen)
    g = -torch.rand(B, T, H, device=dev, generator=gen) * 0.05
    lam = torch.rand(B, T, H, L, device=dev, generator=gen)
    return q, k, v, g, lam


def measure_fla(B, t):
    """fla's chunk op: a prefill of t tokens, then one call per decoded token with the state."""
    q, k, v, g, lam = inputs(B, t)
    with torch.no_grad():
        bf = torch.bfloat16
        qb, kb, vb, lb = q.to(bf), k.to(bf), v.to(bf), lam.to(bf)
        _, fst = fla_op(qb[:, :t], kb[:, :t], vb[:, :t], g[:, :t], lb[:, :t], output_final_state=True)
        fstate = [fst]

        def theirs(i):
            s = t + i
            _, fstate[0] = fla_op(qb[:, s:s + 1], kb[:, s:s + 1], vb[:, s:s + 1], g[:, s:s + 1],
                                  lb[:, s:s + 1], initial_state=fstate[0], output_final_state=True)
        theirs(0)
        fstate[0] = fst
        return wall_ms(theirs, args.steps)


def fla_in_child(B, t):
    """(ms, None) or (None, why): one fla cell in its own process."""
    if fla_op is None:
        return None, fla_error
    try:
        r = subprocess.run([sys.executable, "-W", "ignore", __file__, "--fla-point", f"{B},{t}",
                            "--dim", str(D), "--steps", str(args.steps)],
                           capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timed out after 600 s"
    lines = r.stdout.strip().splitlines()
    if r.returncode == 0 and lines:
        return json.loads(lines[-1])["fla_ms"], None
    err = [x for x in r.stderr.strip().splitlines() if "Error" in x] or r.stderr.strip().splitlines() or ["?"]
    return None, f"exit {r.returncode}: {err[-1][:200]}"


if args.fla_point:
    B, t = (int(x) for x in args.fla_point.split(","))
    print(json.dumps({"fla_ms": measure_fla(B, t)}))
    sys.exit(0)

import loglinear.torch as lt  # noqa: E402  (the build's python/ on PYTHONPATH)

rows = []
print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; H = {H}, G = 1, K = V = {D}, "
      f"{args.steps} decoded tokens per figure; each fla cell in its own process")
print("\n| B | t | ours: decode_step ms/token | ours: Decoder in a CUDA graph ms/token | "
      "fla: chunk op on 1 token ms/token | fla / ours (decode_step) |\n|---|---|---|---|---|---|")
for B in [int(b) for b in args.batches.split(",")]:
    for t in [int(p) for p in args.positions.split(",")]:
        q, k, v, g, lam = inputs(B, t)
        row = {"B": B, "t": t, "D": D, "H": H, "steps": args.steps}
        with torch.no_grad():
            _, st = lt.chunk_log_linear_attn(q[:, :t], k[:, :t], v[:, :t], g[:, :t], lam[:, :t],
                                             output_final_state=True, validate=False)
            state = [st]

            def ours(i):
                s = t + i
                o, state[0] = lt.decode_step(q[:, s:s + 1], k[:, s:s + 1], v[:, s:s + 1], g[:, s:s + 1],
                                             lam[:, s:s + 1], state[0], validate=False)
            ours(0)  # warm-up (state advances: the timed loop starts one token later)
            state[0] = st
            row["ours_ms"] = wall_ms(ours, args.steps)
            # The in-place Decoder with one step captured in a CUDA graph: per token, the copy of
            # the token's inputs into the graph's static tensors (5 copies) and one replay.
            row["graph_ms"] = decoder_graph_ms(lt.Decoder(st, t + args.steps + 1), (q, k, v, g, lam), t,
                                               args.steps - 3)
        row["fla_ms"], row["fla_error"] = fla_in_child(B, t)
        rows.append(row)
        fla_cell = f"{row['fla_ms']:.3f}" if row["fla_ms"] else f"failed ({row['fla_error'][:100]})"
        ratio = f"{row['fla_ms'] / row['ours_ms']:.1f}x" if row["fla_ms"] else "-"
        print(f"| {B} | {t} | {row['ours_ms']:.3f} | {row['graph_ms']:.3f} | {fla_cell} | {ratio} |", flush=True)
if args.json:
    with open(args.json, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)
