#!/usr/bin/env python3
"""Train a 2-layer log-linear Mamba-2 on MQAR in PyTorch, with loglinear.torch as its attention.

The mixer is SPEC.md §8 (in_proj -> causal conv -> q, k, v, decay g, level weights -> log-linear
attention -> gate, RMSNorm -> out_proj), its level weights are the adaptive paper's per-token MLP
with a softplus output (§7.2, "mlp_softplus"), and the task is multi-query associative recall
(§9.1). Everything is plain PyTorch except the attention, `loglinear.torch.chunk_log_linear_attn`,
whose backward is the library's handwritten one. Runs on CUDA when torch and the loglinear build
both have it, else on the CPU (the C++ reference chunked form); float32 on both.

    PYTHONPATH=build/python /usr/bin/python3 examples/torch/mamba2_mqar.py [--help]
"""
import argparse
import json
import math
import os
import sys
import time

# Idle OpenMP threads (torch's and the library's) sleep instead of spinning: on a busy machine
# spinning threads steal the cores the working ones need (a step took 8x longer on 2 shared cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn as nn
import torch.nn.functional as F

import loglinear
from loglinear.torch import chunk_log_linear_attn

VOCAB = 128  # MQAR: 0 unused, keys 1..63, values 64..127, noise 1..127


# ---- Data: MQAR (SPEC.md §9.1) -----------------------------------------------------------------

def mqar_batch(batch: int, seq_len: int, pairs: int, gen: torch.Generator):
    """One batch of MQAR sequences: (tokens [B,T], targets [B,T]), both int64.

    Positions 2i, 2i+1 hold key i and its value (i < pairs); the query block starts at T - 2n and
    asks every key once, in random order, at positions T-2n+2i. Every other position is noise
    from 1..127. targets[b, t] is the value the model must predict *at* query key t (the sources'
    shifted labels, logits[:, :-1] vs labels[:, 1:]); -100 (ignored) everywhere else.
    """
    B, T, n = batch, seq_len, pairs
    tokens = torch.randint(1, VOCAB, (B, T), generator=gen)                   # noise
    keys = torch.rand(B, 63, generator=gen).argsort(dim=1)[:, :n] + 1         # distinct, 1..63
    values = torch.randint(64, VOCAB, (B, n), generator=gen)                  # 64..127
    tokens[:, 0:2 * n:2], tokens[:, 1:2 * n:2] = keys, values
    order = torch.rand(B, n, generator=gen).argsort(dim=1)                    # every key once
    query_pos = torch.arange(T - 2 * n, T, 2)
    tokens[:, query_pos] = keys.gather(1, order)
    targets = torch.full((B, T), -100, dtype=torch.int64)
    targets[:, query_pos] = values.gather(1, order)
    return tokens, targets


# ---- Model ----------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LambdaMLP(nn.Module):
    """Adaptive level weights (SPEC.md §7.2): lam = softplus(W2 GELU(W1 dl + b1) + b2), shared by
    all heads, acting on the L levels of one token and head. W2 = 0 and b2 = 0.54 at init, so
    every level starts with weight softplus(0.54) ~= 1."""

    def __init__(self, levels: int, hidden: int = 64):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(levels, hidden), nn.Linear(hidden, levels)
        nn.init.xavier_uniform_(self.fc1.weight)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.weight)
        nn.init.constant_(self.fc2.bias, 0.54)

    def forward(self, dl):
        return F.softplus(self.fc2(F.gelu(self.fc1(dl))))


class LogLinearMamba2(nn.Module):
    """The log-linear Mamba-2 mixer (SPEC.md §8), expand 1, one q/k group shared by all heads."""

    def __init__(self, d_model: int, heads: int, d_state: int, levels: int, conv_width: int = 4):
        super().__init__()
        assert d_model % heads == 0, "--d-model must be a multiple of --heads"
        self.H, self.P, self.N, self.L = heads, d_model // heads, d_state, levels
        self.d_inner = d_model
        conv_dim = self.d_inner + 2 * d_state  # x | B (keys) | C (queries)
        # [z | xBC | dt | dl]: gate, conv input, step sizes (one per head), level-weight inputs.
        self.sizes = [self.d_inner, conv_dim, heads, heads * levels]
        self.in_proj = nn.Linear(d_model, sum(self.sizes), bias=False)
        self.conv = nn.Conv1d(conv_dim, conv_dim, conv_width, groups=conv_dim, padding=conv_width - 1)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, heads + 1, dtype=torch.float32)))
        dt0 = torch.exp(torch.rand(heads) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt0 + torch.log(-torch.expm1(-dt0)))  # softplus^-1(dt0)
        self.D = nn.Parameter(torch.ones(heads))
        self.lam_mlp = LambdaMLP(levels)
        self.norm = RMSNorm(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, u):
        B, T, _ = u.shape
        H, P, N, L = self.H, self.P, self.N, self.L
        z, xBC, dt_raw, dl = self.in_proj(u).split(self.sizes, dim=-1)
        xBC = F.silu(self.conv(xBC.transpose(1, 2))[..., :T].transpose(1, 2))  # causal: keep first T
        x, k, q = xBC.split([self.d_inner, N, N], dim=-1)
        dt = F.softplus(dt_raw + self.dt_bias)                 # [B,T,H] step size > 0
        g = -torch.exp(self.A_log) * dt                        # [B,T,H] log decay <= 0
        lam = self.lam_mlp(dl.reshape(B, T, H, L))             # [B,T,H,L] level weights > 0
        x = x.reshape(B, T, H, P)
        v = x * dt.unsqueeze(-1)                               # [B,T,H,P]
        # q, k [B,T,G=1,N]: one group read by every head (fla's layout; any G dividing H works).
        o, _ = chunk_log_linear_attn(q.unsqueeze(2), k.unsqueeze(2), v, g, lam)
        y = o + self.D[:, None] * x                            # skip uses x before the dt scaling
        y = self.norm(y.reshape(B, T, self.d_inner) * F.silu(z))
        return self.out_proj(y)


class Block(nn.Module):
    def __init__(self, d_model, heads, d_state, levels):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.mixer = LogLinearMamba2(d_model, heads, d_state, levels)

    def forward(self, x):
        return x + self.mixer(self.norm(x))  # pre-norm residual


class Model(nn.Module):
    """Embedding -> n_layers x Block -> RMSNorm -> LM head (applied where `where` selects)."""

    def __init__(self, d_model, heads, d_state, levels, n_layers=2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(d_model, heads, d_state, levels) for _ in range(n_layers))
        self.norm = RMSNorm(d_model)
        self.head = nn.Linear(d_model, VOCAB, bias=False)

    def forward(self, tokens, where=None):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x if where is None else x[where])


# ---- Training -----------------------------------------------------------------------------------

def loss_and_accuracy(model, tokens, targets):
    """Cross-entropy and accuracy on the answer positions only (the head runs only there)."""
    mask = targets >= 0
    logits = model(tokens, where=mask)
    loss = F.cross_entropy(logits, targets[mask])
    acc = (logits.argmax(-1) == targets[mask]).float().mean()
    return loss, acc


def pick_device(name: str) -> torch.device:
    gpu = torch.cuda.is_available() and loglinear.has_cuda
    if name == "auto":
        return torch.device("cuda" if gpu else "cpu")
    if name.startswith("cuda") and not gpu:
        sys.exit("--device cuda: needs torch with CUDA, a GPU, and a loglinear build with -DLOGLINEAR_CUDA=ON")
    return torch.device(name)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=500, help="optimiser steps")
    p.add_argument("--seq-len", type=int, default=32, help="sequence length T")
    p.add_argument("--pairs", type=int, default=4, help="key-value pairs per sequence (4 * pairs <= T)")
    p.add_argument("--d-model", type=int, default=64, help="model width (= H * head dim)")
    p.add_argument("--heads", type=int, default=2, help="heads H (they share q and k)")
    p.add_argument("--d-state", type=int, default=32, help="key/query size K (Mamba-2's d_state)")
    p.add_argument("--batch", type=int, default=32, help="sequences per step")
    p.add_argument("--lr", type=float, default=3e-3,
                   help="peak AdamW learning rate (warmup, constant, linear cooldown)")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay on matrices")
    p.add_argument("--log-every", type=int, default=25, help="print the mean loss and accuracy every N steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and the data")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    p.add_argument("--json", metavar="OUT.json", help="write the config and the loss curve here")
    p.add_argument("--expect-loss-drop", type=float, metavar="FRACTION",
                   help="exit 1 unless the mean loss of the last --log-every steps is at least FRACTION "
                        "below the first step's loss (used by the CTest test)")
    args = p.parse_args(argv)
    if not 1 <= args.pairs <= 63 or 4 * args.pairs > args.seq_len:
        p.error("--pairs: expected 1..63 with 4 * pairs <= --seq-len (pairs, then room for the queries)")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    levels = loglinear.num_levels(args.seq_len)
    model = Model(args.d_model, args.heads, args.d_state, levels).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # norms, biases, A_log, dt_bias, D
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    # Learning rate: linear warmup over the first 10 % of the steps, constant, then a linear decay to
    # zero over the last 20 %. (A cosine from the start ended 300 steps at 15 % accuracy instead of
    # 50 %: recall takes off after ~200 steps, and needs the full rate then.)
    warmup, cooldown = max(1, args.steps // 10), max(1, args.steps // 5)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup, (args.steps - s) / cooldown))
    gen = torch.Generator().manual_seed(args.seed + 1)  # data on the CPU, then moved

    n_params = sum(p.numel() for p in model.parameters())
    print(f"log-linear Mamba-2 on MQAR: device {device}, T={args.seq_len}, {args.pairs} pairs, "
          f"d_model={args.d_model}, H={args.heads}, K={args.d_state}, L={levels} levels, batch {args.batch}, "
          f"{n_params} parameters")
    print(f"chance: loss ln(128) = {math.log(VOCAB):.2f}; knowing only that answers are values: "
          f"ln(64) = {math.log(64):.2f}, accuracy 1/64 = {100 / 64:.1f} %")
    curve, window = [], []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        tokens, targets = (t.to(device) for t in mqar_batch(args.batch, args.seq_len, args.pairs, gen))
        loss, acc = loss_and_accuracy(model, tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        window.append((loss.item(), acc.item()))
        curve.append({"step": step, "loss": window[-1][0], "accuracy": window[-1][1]})
        if step == 1 or step % args.log_every == 0 or step == args.steps:
            mean_loss = sum(w[0] for w in window) / len(window)
            mean_acc = sum(w[1] for w in window) / len(window)
            print(f"step {step:5d}  loss {mean_loss:.4f}  answer accuracy {100 * mean_acc:5.1f} %  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
            window = []
    seconds = time.perf_counter() - start

    # Held-out accuracy on fresh sequences (another generator seed).
    model.eval()
    with torch.no_grad():
        tokens, targets = (t.to(device) for t in mqar_batch(256, args.seq_len, args.pairs,
                                                            torch.Generator().manual_seed(args.seed + 2)))
        eval_loss, eval_acc = (x.item() for x in loss_and_accuracy(model, tokens, targets))
    first = curve[0]["loss"]
    tail = curve[-min(args.log_every, len(curve)):]
    last = sum(c["loss"] for c in tail) / len(tail)
    print(f"trained {args.steps} steps in {seconds:.1f} s; loss {first:.4f} -> {last:.4f} "
          f"(mean of the last {len(tail)} steps); held-out: loss {eval_loss:.4f}, "
          f"answer accuracy {100 * eval_acc:.1f} % on 256 sequences")

    if args.json:
        config = {k: v for k, v in vars(args).items() if k not in ("json", "expect_loss_drop")}
        config.update(device=str(device), levels=levels, parameters=n_params, torch=torch.__version__)
        with open(args.json, "w") as f:
            json.dump({"config": config, "seconds": seconds, "first_loss": first, "last_loss": last,
                       "eval_loss": eval_loss, "eval_accuracy": eval_acc, "curve": curve}, f, indent=1)
    if args.expect_loss_drop is not None and not last <= (1 - args.expect_loss_drop) * first:
        print(f"FAIL: expected the loss to fall by at least {100 * args.expect_loss_drop:.0f} % "
              f"({first:.4f} -> at most {(1 - args.expect_loss_drop) * first:.4f}), got {last:.4f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
