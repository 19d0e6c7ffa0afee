"""The longest sequence whose forward and backward fit one GPU (issue 17's "the longest T that
trains at H = 16, D = 64 on N GPUs", here N = 1; context parallelism splits longer ones).

One sequence (B = 1), H heads sharing one q/k group (G = 1), K = V = D, through
loglinear.torch.chunk_log_linear_attn on CUDA tensors with autograd (the op's workspace comes from
torch's caching allocator, so running out of memory raises torch.OutOfMemoryError). T doubles
from --start until a step fails, then the interval is bisected to --resolution. A step is a
forward, a backward of sum(o * w) and a synchronise. Reported per dtype: the longest T that ran,
the shortest that failed, and the peak memory of the longest (torch.cuda.max_memory_allocated:
inputs, gradients, o and the op's workspace).

    PYTHONPATH=build-torch/python python3 bench/gpu/longest_t.py --json longest_t.json
"""
import argparse
import json

import torch

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--heads", type=int, default=16, help="H")
ap.add_argument("--dim", type=int, default=64, help="K = V")
ap.add_argument("--dtypes", default="bfloat16,float32", help="storage dtypes to try (comma-separated)")
ap.add_argument("--start", type=int, default=1 << 16, help="first T")
ap.add_argument("--limit", type=int, default=1 << 30, help="largest T tried (the GPU API's limit is 2^30)")
ap.add_argument("--resolution", type=float, default=0.05, help="stop bisecting when the interval is this fraction of T")
ap.add_argument("--json", help="write the results here")
args = ap.parse_args()

import loglinear  # noqa: E402
import loglinear.torch as lt  # noqa: E402


def step(T, dtype):
    """One forward + backward at length T; (ok, peak bytes or the error's first line)."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    H, D, L = args.heads, args.dim, loglinear.num_levels(T)
    try:
        gen = torch.Generator(device="cuda").manual_seed(T)
        q = (torch.randn(1, T, 1, D, device="cuda", generator=gen) * 0.1).to(dtype).requires_grad_()
        k = (torch.randn(1, T, 1, D, device="cuda", generator=gen) * 0.1).to(dtype).requires_grad_()
        v = torch.randn(1, T, H, D, device="cuda", generator=gen).to(dtype).requires_grad_()
        g = (-torch.rand(1, T, H, device="cuda", generator=gen) * 0.05).requires_grad_()
        lam = torch.rand(1, T, H, L, device="cuda", generator=gen).requires_grad_()
        o, _ = lt.chunk_log_linear_attn(q, k, v, g, lam, validate=False)
        o.float().sum().backward()
        torch.cuda.synchronize()
        return True, torch.cuda.max_memory_allocated()
    except torch.OutOfMemoryError as e:
        return False, str(e).splitlines()[0][:160]
    except (RuntimeError, ValueError) as e:  # e.g. a size limit of the GPU API, named by the op
        return False, f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"


results = []
print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; B = 1, H = {args.heads}, G = 1, "
      f"K = V = {args.dim}; forward + backward through loglinear.torch")
print("\n| dtype | longest T that ran | shortest T that failed | peak memory at the longest | why the next failed |"
      "\n|---|---|---|---|---|")
for name in args.dtypes.split(","):
    dtype = getattr(torch, name)
    ok_T, ok_peak, bad_T, why = None, None, None, ""
    T = args.start
    while T <= args.limit:
        ok, info = step(T, dtype)
        if not ok:
            bad_T, why = T, info
            break
        ok_T, ok_peak = T, info
        T *= 2
    while ok_T is not None and bad_T is not None and bad_T - ok_T > args.resolution * ok_T:
        mid = (ok_T + bad_T) // 2
        ok, info = step(mid, dtype)
        if ok:
            ok_T, ok_peak = mid, info
        else:
            bad_T, why = mid, info
    row = {"dtype": name, "longest_T": ok_T, "failed_T": bad_T, "peak_bytes": ok_peak, "failure": why,
           "H": args.heads, "D": args.dim}
    results.append(row)
    peak = f"{ok_peak / 2**30:.1f} GiB" if ok_peak else "-"
    print(f"| {name} | {ok_T if ok_T else '-'} | {bad_T if bad_T else '-'} | {peak} | {why[:90]} |", flush=True)
if args.json:
    with open(args.json, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": results}, f, indent=1)
