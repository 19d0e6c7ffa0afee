"""Peer for issue 12's LM row: the log-linear Mamba-2 LM of `loglinear-train --model mamba2 --task lm`,
written in plain PyTorch (float32 parameters and activations) around flash-linear-attention's Triton
op fla.ops.log_linear_attn.chunk_log_linear_attn, trained with torch.optim.AdamW + clip_grad_norm_
on random byte tokens. It reports tokens/s of whole training steps (forward + cross-entropy +
backward + clip + AdamW; B*T tokens a step), the mean step time, and torch.cuda.max_memory_allocated,
for the eager model and, with --compile, for torch.compile(model) too (the fla op stays outside).

The model mirrors reference/loglinear/nn/lm.cpp, mamba2_mixer.cpp, rmsnorm.cpp, swiglu.cpp and
lambda/mlp*.cpp (see the comments below); lr 1e-3 constant, betas (0.9, 0.999), eps 1e-8, weight
decay 0, clip 1.0 are loglinear-train's defaults. Our side, in the same sitting:
    loglinear-train --model mamba2 --task lm --length 2048 --d-model 512 --layers 6 --heads 16 \
        --d-state 64 --expand 2 --batch 8 --device cuda --steps 20 --eval-every 20 --val-size 8 \
        --no-progress --json ours.json          # read train_tokens_per_s
(the script prints this line for the sizes it was given).

fla is not a dependency and is never committed: export its `fla/` package into an ignored folder
for the run and point at it,
    git --git-dir=<mirror> archive HEAD fla | tar -x -C .peer
    FLA_PATH=.peer python3 bench/gpu/peer_lm.py --compile --json peer_lm.json
fla's package roots (fla/__init__.py imports its layers and models) are replaced by empty stubs so
that only the op and its utilities load; a stand-in for einops.reduce is used if einops is absent.

Precision: the PyTorch parts run strict float32 (TF32 off, as loglinear's cuBLAS pedantic mode).
fla's op is tried in float32 first (--op-precision auto); if it refuses or fails, q/k/v/lambda are
cast to bf16 for the op alone and the JSON says so. Triton's tl.dot on float32 inputs uses TF32
unless TRITON_F32_DEFAULT=ieee (--triton-f32 ieee sets it): the default favours the peer.
"""
import argparse
import gc
import json
import math
import os
import re
import sys
import time
import types

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--d-model", type=int, default=512)
ap.add_argument("--layers", type=int, default=6)
ap.add_argument("--length", type=int, default=2048, help="T")
ap.add_argument("--batch", type=int, default=8, help="B")
ap.add_argument("--heads", type=int, default=16, help="H; V = expand * d_model / H")
ap.add_argument("--d-state", type=int, default=64, help="K (fla: a multiple of 64)")
ap.add_argument("--expand", type=int, default=2)
ap.add_argument("--mlp-hidden", type=int, default=64, help="lambda MLP width (loglinear-train --mlp-hidden)")
ap.add_argument("--steps", type=int, default=20, help="timed steps")
ap.add_argument("--warmup-steps", type=int, default=3)
ap.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
ap.add_argument("--op-precision", choices=["auto", "fp32", "bf16"], default="auto",
                help="auto: float32, falling back to bf16 for the op if fla fails in float32")
ap.add_argument("--triton-f32", choices=["default", "ieee"], default="default",
                help="ieee: TRITON_F32_DEFAULT=ieee, float32 dots without TF32 in fla's kernels")
ap.add_argument("--fused-adamw", action="store_true", help="AdamW(fused=True) instead of torch's default")
ap.add_argument("--tf32", action="store_true",
                help="let the PyTorch GEMMs use TF32 (torch.backends.cuda.matmul.allow_tf32 = True): the peer of "
                     "loglinear-train --matmul tf32")
ap.add_argument("--json", help="write the result here")
args = ap.parse_args()
if args.triton_f32 == "ieee":
    os.environ["TRITON_F32_DEFAULT"] = "ieee"  # read by Triton when it compiles, so set before any kernel

import torch  # noqa: E402
import torch._dynamo  # noqa: E402  (its config and reset(), for --compile)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402

# ---- fla's op alone: stub packages for fla and fla.ops so that neither __init__.py runs ----
fla_root = os.path.join(os.environ.get("FLA_PATH", ".peer"), "fla")
if not os.path.isdir(fla_root):
    sys.exit(f"peer_lm: no fla package at {fla_root}; set FLA_PATH (see the docstring)")
fla_version = re.search(r'__version__\s*=\s*"([^"]+)"', open(os.path.join(fla_root, "__init__.py")).read())
fla_version = fla_version.group(1) if fla_version else "unknown"
for name, path in (("fla", fla_root), ("fla.ops", os.path.join(fla_root, "ops"))):
    stub = types.ModuleType(name)
    stub.__path__, stub.__version__ = [path], fla_version  # fla.utils reads fla.__version__
    sys.modules[name] = stub
try:
    import einops  # noqa: F401
except ModuleNotFoundError:
    def _reduce(x, pattern, op, g, h):  # the op's one use: "b t (g h) k -> b t g k", "sum"
        assert pattern == "b t (g h) k -> b t g k" and op == "sum", pattern
        return x.unflatten(2, (g, h)).sum(3)
    sys.modules["einops"] = types.SimpleNamespace(reduce=_reduce)
    print("# einops missing: using a stand-in reduce (sum over the heads of a group)")
from fla.ops.log_linear_attn import chunk_log_linear_attn  # noqa: E402

# The PyTorch side is float32 like loglinear's (cuBLAS pedantic math: no TF32 anywhere), or with
# --tf32 its GEMMs in TF32 like loglinear-train --matmul tf32.
torch.backends.cuda.matmul.allow_tf32 = args.tf32
torch.backends.cudnn.allow_tf32 = args.tf32
OP_PRECISION = {"now": "fp32"}  # what attention() casts to; the eager run settles it


def num_levels(T):  # core/fenwick.cpp: ceil(log2 T) + 1 = bit_width(T - 1) + 1
    return (T - 1).bit_length() + 1


@torch.compiler.disable  # the op stays eager under torch.compile (fla marks it so as well)
def attention(q, k, v, g, lam):
    """q, k [B,T,G,K]; v [B,T,H,V]; g [B,T,H] (log-decay per step); lam [B,T,H,L] -> o [B,T,H,V]."""
    if OP_PRECISION["now"] == "bf16":  # fla's own benchmarks run bf16 with g in float32
        o, _ = chunk_log_linear_attn(q.bfloat16(), k.bfloat16(), v.bfloat16(), g, lam.bfloat16())
        return o.float()
    return chunk_log_linear_attn(q, k, v, g, lam)[0]


def normal_(w, std=0.02):
    nn.init.normal_(w, 0.0, std)
    return w


class LevelWeights(nn.Module):
    """lambda/mlp.cpp + mlp_softplus.cpp: lam = softplus(W2 GELU(W1 dl + b1) + b2) per (token, head)."""

    def __init__(self, L, hidden):
        super().__init__()
        self.W1, self.W2 = nn.Linear(L, hidden), nn.Linear(hidden, L)
        nn.init.xavier_uniform_(self.W1.weight)
        nn.init.zeros_(self.W1.bias)
        nn.init.zeros_(self.W2.weight)            # W2 = 0, b2 = 0.54: lam ~ 1 at init
        nn.init.constant_(self.W2.bias, 0.54)

    def forward(self, dl):  # [..., L], the [N*H, L] view of the C++
        return F.softplus(self.W2(F.gelu(self.W1(dl))))  # exact (erf) GELU, as core/activations.hpp


class Mamba2Mixer(nn.Module):
    """nn/mamba2_mixer.cpp, forward() line by line."""

    def __init__(self, d, expand, H, G, K, L, conv_width, lambda_hidden):
        super().__init__()
        self.d_inner, self.H, self.G, self.K, self.L = expand * d, H, G, K, L
        self.V = self.d_inner // H
        self.conv_dim = self.d_inner + 2 * G * K
        self.in_proj = nn.Linear(d, self.d_inner + self.conv_dim + H + H * L, bias=False)
        self.conv = nn.Conv1d(self.conv_dim, self.conv_dim, conv_width, groups=self.conv_dim,
                              padding=conv_width - 1)  # depthwise, causal once the tail is cut
        dt0 = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp_min(1e-4)
        self.dt_bias = nn.Parameter(dt0 + torch.log(-torch.expm1(-dt0)))  # softplus^-1(dt0)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, H + 1, dtype=torch.float32)))
        self.D = nn.Parameter(torch.ones(H))
        self.norm_w = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d, bias=False)
        self.lam = LevelWeights(L, lambda_hidden)
        for w in (self.in_proj.weight, self.conv.weight, self.out_proj.weight):
            normal_(w)
        nn.init.zeros_(self.conv.bias)

    def forward(self, u):  # u [B, T, d]
        B, T, _ = u.shape
        H, G, K, V, L = self.H, self.G, self.K, self.V, self.L
        # [z | xBC | dt_raw | dl] = in_proj(u), in this column order.
        z, xbc, dt_raw, dl = self.in_proj(u).split([self.d_inner, self.conv_dim, H, H * L], dim=-1)
        # Causal depthwise conv (keep the first T outputs) + SiLU; [x | Bm | Cm] = xBC.
        xbc = F.silu(self.conv(xbc.transpose(1, 2))[..., :T].transpose(1, 2))
        x, Bm, Cm = xbc.split([self.d_inner, G * K, G * K], dim=-1)
        dt = F.softplus(dt_raw + self.dt_bias)       # [B, T, H]
        g = -torch.exp(self.A_log) * dt               # log-decay per step, <= 0
        xh = x.unflatten(-1, (H, V))
        v = xh * dt.unsqueeze(-1)                     # v = x * dt per head
        lam = self.lam(dl.unflatten(-1, (H, L)))      # [B, T, H, L]
        o = attention(Cm.unflatten(-1, (G, K)), Bm.unflatten(-1, (G, K)), v, g, lam)  # q = C, k = B
        y = (o + self.D.unsqueeze(-1) * xh).flatten(-2)  # D skip reads x before the dt scaling
        # Gated RMSNorm, norm_before_gate = False: RMSNorm(y * SiLU(z)) per group, then * w.
        h = (y * F.silu(z)).unflatten(-1, (G, -1))
        yn = F.rms_norm(h, (h.shape[-1],), eps=1e-5).flatten(-2) * self.norm_w
        return self.out_proj(yn)


class SwiGLU(nn.Module):
    """nn/swiglu.cpp: W_down (SiLU(W_gate x) * W_up x), bias-free, two separate input matmuls."""

    def __init__(self, d, hidden):
        super().__init__()
        self.W_gate, self.W_up = nn.Linear(d, hidden, bias=False), nn.Linear(d, hidden, bias=False)
        self.W_down = nn.Linear(hidden, d, bias=False)
        for m in (self.W_gate, self.W_up, self.W_down):
            normal_(m.weight)

    def forward(self, x):
        return self.W_down(F.silu(self.W_gate(x)) * self.W_up(x))


class Block(nn.Module):
    def __init__(self, d, mlp_hidden, **mixer):
        super().__init__()
        self.norm1, self.norm2 = nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)
        self.mixer, self.mlp = Mamba2Mixer(d, **mixer), SwiGLU(d, mlp_hidden)

    def forward(self, x):  # pre-norm residuals, nn/lm.cpp
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MambaLm(nn.Module):
    """nn/lm.cpp: embedding -> blocks -> RMSNorm -> untied head; mean cross-entropy."""

    def __init__(self, a, vocab=256):
        super().__init__()
        mixer = dict(expand=a.expand, H=a.heads, G=1, K=a.d_state, L=num_levels(a.length), conv_width=4,
                     lambda_hidden=a.mlp_hidden)  # train/model.cpp: n_groups = 1, levels = num_levels(T)
        self.embedding = nn.Embedding(vocab, a.d_model)
        self.blocks = nn.ModuleList(Block(a.d_model, 4 * a.d_model, **mixer) for _ in range(a.layers))
        self.norm_f = nn.RMSNorm(a.d_model, eps=1e-5)
        self.lm_head = nn.Linear(a.d_model, vocab, bias=False)
        normal_(self.embedding.weight)
        normal_(self.lm_head.weight)

    def forward(self, tokens, targets):
        x = self.embedding(tokens)
        for b in self.blocks:
            x = b(x)
        logits = self.lm_head(self.norm_f(x))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def short(exc, n=2000):
    return f"{type(exc).__name__}: {str(exc).strip()[:n]}"


def measure(mode, errors):
    """One fresh model + optimiser; returns the run's record (tokens_per_s None if it failed)."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = MambaLm(args).cuda()
    run_model = torch.compile(model) if mode == "compile" else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                            **({"fused": True} if args.fused_adamw else {}))
    B, T = args.batch, args.length
    data = torch.randint(0, 256, (4, B, T + 1), device="cuda")  # random bytes; next-token targets

    def step(i):
        seq = data[i % len(data)]
        loss = run_model(seq[:, :-1], seq[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    rec = {"mode": mode, "tokens_per_s": None, "step_ms": None, "peak_memory_bytes": None,
           "op_precision": OP_PRECISION["now"], "final_loss": None}
    # The first step finds out whether fla runs in float32 here (Triton may refuse the shapes, e.g.
    # for shared memory) and, under compile, whether compilation works: errors are kept, not fatal.
    tries = ["fp32", "bf16"] if mode == "eager" and args.op_precision == "auto" else [OP_PRECISION["now"]]
    for prec in tries:
        OP_PRECISION["now"] = rec["op_precision"] = prec
        try:
            step(0)
            torch.cuda.synchronize()
            break
        except Exception as exc:  # noqa: BLE001 - report whatever fla/Triton/Inductor raise
            errors.append(f"{mode}, op in {prec}: {short(exc)}")
            print(f"# {mode}: first step failed with the op in {prec}: {short(exc, 300)}", flush=True)
    else:
        return rec
    try:
        for i in range(1, args.warmup_steps):
            step(i)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(args.steps):
            loss = step(i)
        torch.cuda.synchronize()  # no host sync inside the loop: the GPU queue stays full
        secs = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        errors.append(f"{mode}, timed steps: {short(exc)}")
        return rec
    rec.update(tokens_per_s=args.steps * B * T / secs, step_ms=1e3 * secs / args.steps,
               peak_memory_bytes=torch.cuda.max_memory_allocated(), final_loss=float(loss))
    del run_model, model, opt
    if mode == "compile":
        torch._dynamo.reset()  # drop the compiled graphs before anything else is measured
    return rec


def main():
    d_inner = args.expand * args.d_model
    if d_inner % args.heads:
        sys.exit(f"peer_lm: --heads {args.heads} must divide expand * d_model = {d_inner}")
    V, L = d_inner // args.heads, num_levels(args.length)
    # fla's constraints (fla/ops/log_linear_attn/chunk.py): one q/k group (G = 1; the model has
    # n_groups = 1), K a multiple of 64, V a power of two, chunk 64, T < 2^17; lambda has L levels
    # (7 within a chunk of 64, then one per chunk level; levels at index >= L are read as 0).
    errors = []
    if args.d_state % 64 or V & (V - 1):
        errors.append(f"fla needs K % 64 == 0 and V a power of two; got K = {args.d_state}, V = {V}")
    if args.steps < 1:
        sys.exit("peer_lm: --steps must be >= 1")
    if args.compile:  # the op's graph break repeats per layer: allow a graph per layer and more
        for knob in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, knob):
                setattr(torch._dynamo.config, knob, max(64, 2 * args.layers))
    OP_PRECISION["now"] = "bf16" if args.op_precision == "bf16" else "fp32"
    runs = [] if errors else [measure("eager", errors)]
    if args.compile and not errors:
        runs.append(measure("compile", errors))
    ours = (f"loglinear-train --model mamba2 --task lm --length {args.length} --d-model {args.d_model} "
            f"--layers {args.layers} --heads {args.heads} --d-state {args.d_state} --expand {args.expand} "
            f"--mlp-hidden {args.mlp_hidden} --batch {args.batch} --device cuda --steps {args.steps} "
            f"--eval-every {args.steps} --val-size 8 --no-progress{' --matmul tf32' if args.tf32 else ''} --json ours.json")
    print(f"# peer: PyTorch {torch.__version__}, Triton {triton.__version__}, fla {fla_version} on "
          f"{torch.cuda.get_device_name()}; V = {V}, L = {L}; TRITON_F32_DEFAULT = "
          f"{os.environ.get('TRITON_F32_DEFAULT', 'unset (tf32)')}; PyTorch GEMMs {'TF32' if args.tf32 else 'float32'}")
    print(f"# ours, same sitting: {ours}")
    print("\n| model | mode | d | layers | T | B | H | K | op precision | tokens/s | step ms | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        cells = ([f"{r['tokens_per_s']:.0f}", f"{r['step_ms']:.1f}", f"{r['peak_memory_bytes'] / 2**30:.2f}"]
                 if r["tokens_per_s"] else ["failed", "", ""])
        print(f"| PyTorch + fla | {r['mode']} | {args.d_model} | {args.layers} | {args.length} | {args.batch} | "
              f"{args.heads} | {args.d_state} | {r['op_precision']} | " + " | ".join(cells) + " |")
    for e in errors:
        print(f"# error: {e[:400]}")
    if args.json:
        result = {"config": {**vars(args), "V": V, "levels": L, "n_groups": 1, "conv_width": 4,
                             "ffn_hidden": 4 * args.d_model, "vocab": 256, "lr": 1e-3, "clip": 1.0},
                  "versions": {"torch": torch.__version__, "triton": triton.__version__, "fla": fla_version,
                               "python": sys.version.split()[0]},
                  "device_name": torch.cuda.get_device_name(),
                  "triton_f32_default": os.environ.get("TRITON_F32_DEFAULT", "tf32 (unset)"),
                  "loglinear_command": ours, "runs": runs, "errors": errors}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    # A failed compile run is reported, not fatal: only a failed eager run makes the exit status 1.
    return 0 if runs and runs[0]["tokens_per_s"] else 1


if __name__ == "__main__":
    sys.exit(main())
