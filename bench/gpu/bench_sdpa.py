"""Peer timings for bench/RESULTS-gpu.md on the device machine: causal softmax attention through
PyTorch's scaled_dot_product_attention (flash backend), bf16, forward+backward, and the GPU's
measured ceilings (bf16 and fp32 GEMM TFLOP/s, device-to-device copy bandwidth).
    python3 bench/gpu/bench_sdpa.py"""
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cuda_timing import timed  # noqa: E402




print(f"# peers on {torch.cuda.get_device_name()} (torch {torch.__version__})")
for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32")):
    x = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    if dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
    ms = timed(lambda: x @ x)
    print(f"GEMM 8192^3 {name}: {2 * 8192**3 / ms / 1e9:.0f} TFLOP/s")
src = torch.empty(2**30, device="cuda", dtype=torch.uint8); dst = torch.empty_like(src)
ms = timed(lambda: dst.copy_(src))
print(f"device copy: {2 * 2**30 / ms / 1e6:.0f} GB/s (read + write)")
print("\n| D | T | B | SDPA flash fwd ms | SDPA flash fwd+bwd ms |\n|---|---|---|---|---|")
tokens = 32768
for D in (64, 128):
    T = 1024
    while T <= tokens:
        B = tokens // T
        q, k, v = (torch.randn(B, 16, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            fwd = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
            def fb():
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                o.backward(torch.ones_like(o))
            both = timed(fb)
        print(f"| {D} | {T} | {B} | {fwd:.2f} | {both:.2f} |", flush=True)
        T *= 2
