"""loglinear.torch on an H200 (issue 15, item 5): the op's time against the raw C++ device call it
wraps (the overhead of the Python layer: argument checks, the value check's synchronisation,
allocations), in float32 and bf16, forward and forward+backward; its error against a float64
reference beside fla's op (if FLA_PATH points at an exported fla/) on the same inputs.

    PYTHONPATH=build-torch/python python3 bench/gpu/torch_op_bench.py --json torch_op.json
    FLA_PATH=.peer PYTHONPATH=build-torch/python python3 bench/gpu/torch_op_bench.py   # + fla

Shapes: fla's benchmark shapes (B*T = 32768 tokens, H = 16, q/k shared: G = 1, K = V = 64).
Times: CUDA events around 10 calls after a warm-up (cuda_timing.timed)."""
import argparse
import json
import math
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cuda_timing import timed  # noqa: E402

import loglinear  # noqa: E402
import loglinear.torch as lt  # noqa: E402

core = loglinear._loglinear


def make(B, T, H, D, dtype, seed=0, device="cuda"):
    g = torch.Generator(device="cpu").manual_seed(seed)
    L = loglinear.num_levels(T)
    x = [torch.randn(B, T, 1, D, generator=g), torch.randn(B, T, 1, D, generator=g) / math.sqrt(D),
         torch.randn(B, T, H, D, generator=g), -0.1 * torch.rand(B, T, H, generator=g),
         torch.rand(B, T, H, L, generator=g)]
    return [t.to(device, dtype if i < 3 else torch.float32) for i, t in enumerate(x)]


def raw_forward(x, precision, chunk):
    """The C++ device call alone, buffers allocated once outside the timed region."""
    shapes = [tuple(t.shape) for t in x]
    nbytes = core._cuda_workspace_bytes(*shapes, chunk, precision, False)
    ws = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    o = torch.empty_like(x[2])
    ptrs = [t.data_ptr() for t in (*x, o)]
    stream = torch.cuda.current_stream().cuda_stream
    return lambda: core._cuda_forward_device(*shapes, chunk, precision, ptrs, ws.data_ptr(), nbytes, stream)


def speed(rows, T, dtype, chunk=64):
    tokens, H, D = 32768, 16, 64
    B = tokens // T
    x = make(B, T, H, D, dtype)
    prec = "bf16" if dtype == torch.bfloat16 else "fp32"
    xg = [t.clone().requires_grad_() for t in x]
    do = torch.randn_like(x[2])

    def fwd_bwd(validate):
        o, _ = lt.chunk_log_linear_attn(*xg, validate=validate, chunk_size=chunk)
        o.backward(do)
    r = {"T": T, "B": B, "H": H, "D": D, "dtype": str(dtype).replace("torch.", ""),
         "raw_fwd_ms": timed(raw_forward(x, prec, chunk)),
         "op_fwd_ms": timed(lambda: lt.chunk_log_linear_attn(*x, chunk_size=chunk)),
         "op_fwd_novalidate_ms": timed(lambda: lt.chunk_log_linear_attn(*x, chunk_size=chunk, validate=False)),
         "op_fwd_bwd_ms": timed(lambda: fwd_bwd(True)),
         "op_fwd_bwd_novalidate_ms": timed(lambda: fwd_bwd(False))}
    rows.append(r)
    print(f"| {T} | {B} | {r['dtype']} | {r['raw_fwd_ms']:.3f} | {r['op_fwd_ms']:.3f} | {r['op_fwd_novalidate_ms']:.3f} "
          f"| {r['op_fwd_bwd_ms']:.3f} | {r['op_fwd_bwd_novalidate_ms']:.3f} |", flush=True)


def fla_op():
    path = os.environ.get("FLA_PATH")
    if not path:
        return None
    sys.argv = sys.argv[:1]
    import types
    sys.path.insert(0, path)
    try:
        import einops  # noqa: F401
    except ModuleNotFoundError:
        def _reduce(x, pattern, op, g, h):
            return x.unflatten(2, (g, h)).sum(3)
        sys.modules["einops"] = types.SimpleNamespace(reduce=_reduce)
    import fla
    ops = types.ModuleType("fla.ops")
    ops.__path__ = [os.path.join(fla.__path__[0], "ops")]
    sys.modules["fla.ops"] = ops
    from fla.ops.log_linear_attn import chunk_log_linear_attn
    from fla.ops.log_linear_attn.naive import naive_log_linear_attn
    return chunk_log_linear_attn, naive_log_linear_attn


def accuracy(rows, fla):
    """Error of o and of dq..dlam against the float64 CPU op on one input (normwise relative)."""
    B, T, H, D = 1, 1024, 4, 64
    x64 = [t.double().requires_grad_() for t in make(B, T, H, D, torch.float64, seed=1, device="cpu")]
    o64, _ = lt.chunk_log_linear_attn(*x64)
    w = torch.randn(o64.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (o64 * w).sum().backward()

    def err(a, b):
        return float((a.double().cpu() - b).norm() / b.norm())
    cands = [("loglinear fp32", lambda x: lt.chunk_log_linear_attn(*x)[0], torch.float32),
             ("loglinear bf16", lambda x: lt.chunk_log_linear_attn(*x)[0], torch.bfloat16)]
    if fla is not None:
        chunk, naive = fla

        def naive_heads(q, k, v, g, lam):  # the O(T^2) reference indexes q, k per head: expand the group
            H = v.shape[2]
            return naive(q.expand(-1, -1, H, -1), k.expand(-1, -1, H, -1), v, g, lam)
        cands += [("fla fp32 inputs", lambda x: chunk(*x)[0], torch.float32),
                  ("fla bf16", lambda x: chunk(*x)[0], torch.bfloat16),
                  ("fla naive reference fp32", lambda x: naive_heads(*x), torch.float32),
                  ("fla naive reference float64", lambda x: naive_heads(*x), torch.float64)]
    for name, f, dtype in cands:
        # q, k, v in the tested dtype; g float32; level_scales float32 for ours, the dtype for fla (its benchmark's)
        x = [t.detach().to("cuda", dtype if i < 3 or (i == 4 and name.startswith("fla")) or dtype == torch.float64
                           else torch.float32).requires_grad_() for i, t in enumerate(x64)]
        try:
            o = f(x)
            (o * w.to("cuda", o.dtype)).sum().backward()
            r = {"impl": name, "o": err(o, o64.detach())}
            r.update({n: err(a.grad, b.grad) for n, a, b in zip(("dq", "dk", "dv", "dg", "dlam"), x, x64)})
        except Exception as e:  # fla's limits (e.g. fp32 shared memory) are results too
            r = {"impl": name, "error": f"{type(e).__name__}: {str(e)[:200]}"}
        rows.append(r)
        print(json.dumps(r), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--lengths", default="2048,8192", help="T values (B = 32768 / T)")
    args = ap.parse_args()
    fla = fla_op()
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, custom op: {lt.HAS_CUSTOM_OP}")
    print("\n| T | B | dtype | C++ device call fwd ms | op fwd ms | op fwd ms (validate=False) | op fwd+bwd ms | "
          "op fwd+bwd ms (validate=False) |\n|---|---|---|---|---|---|---|---|")
    speeds, errors = [], []
    for T in [int(t) for t in args.lengths.split(",")]:
        for dtype in (torch.float32, torch.bfloat16):
            speed(speeds, T, dtype)
    print("\n# error vs the float64 CPU op (normwise relative), B=1 T=1024 H=4 D=64")
    accuracy(errors, fla)
    if args.json:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
        with open(args.json, "w") as f:
            json.dump({"commit": commit, "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "custom_op": lt.HAS_CUSTOM_OP, "speed": speeds, "accuracy": errors}, f, indent=1)


if __name__ == "__main__":
    main()
