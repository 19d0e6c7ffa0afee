"""Peer timings for bench/RESULTS-gpu.md: flash-linear-attention's Triton kernel
fla.ops.log_linear_attn.chunk_log_linear_attn, bf16, forward and forward+backward, for the issue-7
shapes (B*T = 32768 tokens, H = 16, q/k shared by all heads: G = 1, L = num_levels(T)).
fla is not a dependency: export its `fla/` package into an ignored folder and point at it,
    git --git-dir=<mirror> archive HEAD fla | tar -x -C .peer
    FLA_PATH=.peer python3 bench/gpu/bench_fla.py      # FLA_DIMS=128 FLA_TMIN=4096 pick a subset
Only the op module is imported (fla/ops/__init__ would pull in every op); if einops is absent, a
stand-in for the one reduce() pattern the op uses (sum over the heads of a group) is installed."""
import math
import os
import sys
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cuda_timing import timed  # noqa: E402

sys.path.insert(0, os.environ.get("FLA_PATH", ".peer"))
try:
    import einops  # noqa: F401
except ModuleNotFoundError:
    def _reduce(x, pattern, op, g, h):  # "b t (g h) k -> b t g k", "sum"
        assert pattern == "b t (g h) k -> b t g k" and op == "sum", pattern
        return x.unflatten(2, (g, h)).sum(3)
    sys.modules["einops"] = types.SimpleNamespace(reduce=_reduce)
    print("# einops missing: using the stand-in reduce (sum over heads of a group)")
import fla  # noqa: E402  (package root only: lazy, imports no ops)
ops = types.ModuleType("fla.ops"); ops.__path__ = [os.path.join(fla.__path__[0], "ops")]
sys.modules["fla.ops"] = ops  # skip fla/ops/__init__.py, which imports every op
from fla.ops.log_linear_attn import chunk_log_linear_attn  # noqa: E402




print(f"# fla chunk_log_linear_attn on {torch.cuda.get_device_name()} (torch {torch.__version__})")
print("\n| D | T | B | fla fwd ms | fla fwd+bwd ms | Mtokens/s (fwd+bwd) |\n|---|---|---|---|---|---|")
tokens, H = 32768, 16
dims = [int(d) for d in os.environ.get("FLA_DIMS", "64,128").split(",")]
T_min = int(os.environ.get("FLA_TMIN", "1024"))
for D in dims:
    T = T_min
    while T <= tokens:
        B, L = tokens // T, math.ceil(math.log2(T)) + 1
        dev, bf = "cuda", torch.bfloat16
        q = torch.randn(B, T, 1, D, device=dev, dtype=bf).requires_grad_()
        k = torch.randn(B, T, 1, D, device=dev, dtype=bf).requires_grad_()
        v = torch.randn(B, T, H, D, device=dev, dtype=bf).requires_grad_()
        g = (-torch.rand(B, T, H, device=dev, dtype=torch.float32) * 0.1).requires_grad_()
        lam = torch.rand(B, T, H, L, device=dev, dtype=bf).requires_grad_()
        try:
            fwd = timed(lambda: chunk_log_linear_attn(q, k, v, g, lam), reps=5)
            def fb():
                o, _ = chunk_log_linear_attn(q, k, v, g, lam)
                o.backward(torch.ones_like(o))
            both = timed(fb, reps=5)
            print(f"| {D} | {T} | {B} | {fwd:.2f} | {both:.2f} | {tokens / both / 1e3:.1f} |", flush=True)
        except Exception as exc:  # report and go on: one failing shape should not hide the rest
            print(f"| {D} | {T} | {B} | failed: {type(exc).__name__}: {str(exc)[:120]} | | |", flush=True)
        T *= 2
