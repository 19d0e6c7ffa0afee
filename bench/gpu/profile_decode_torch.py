"""Where the time of loglinear.torch.decode_step goes on the GPU (issue 14's decoding, issue 15's op).

From C++ the fused decode kernel takes 15-21 us per token at B = 1, D = 64 (bench_cuda_decode);
from PyTorch the whole step took 0.29-0.33 ms (bench_decode_torch.py, 2026-12-03). This script
splits the step: the wall time per token with and without the argument checks (validate), the
Python functions by own time (cProfile) and the torch operators and kernels (torch.profiler).

    PYTHONPATH=build-torch/python python3 bench/gpu/profile_decode_torch.py --json decode_profile.json
"""
import argparse
import cProfile
import io
import json
import pstats

import torch

from cuda_timing import decoder_graph_ms, wall_ms  # bench/gpu/, the script's folder

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--batch", type=int, default=1, help="streams B")
ap.add_argument("--position", type=int, default=1024, help="prefill length t")
ap.add_argument("--dim", type=int, default=64, help="K = V")
ap.add_argument("--heads", type=int, default=16, help="H (q and k shared: G = 1)")
ap.add_argument("--steps", type=int, default=200, help="decoded tokens per measurement")
ap.add_argument("--top", type=int, default=20, help="rows of each table")
ap.add_argument("--json", help="write the measurements here")
args = ap.parse_args()

import loglinear  # noqa: E402
import loglinear.torch as lt  # noqa: E402

B, t, D, H, n = args.batch, args.position, args.dim, args.heads, args.steps
T = t + n + 1
L = (T - 1).bit_length() + 1
gen = torch.Generator(device="cuda").manual_seed(0)
q = torch.randn(B, T, 1, D, device="cuda", generator=gen) * 0.1
k = torch.randn(B, T, 1, D, device="cuda", generator=gen) * 0.1
v = torch.randn(B, T, H, D, device="cuda", generator=gen)
g = -torch.rand(B, T, H, device="cuda", generator=gen) * 0.05
lam = torch.rand(B, T, H, L, device="cuda", generator=gen)
with torch.no_grad():
    _, prefill = lt.chunk_log_linear_attn(q[:, :t], k[:, :t], v[:, :t], g[:, :t], lam[:, :t],
                                          output_final_state=True, validate=False)


def run(validate, steps=n):
    """Decode `steps` tokens after the prefill; ms per token, CUDA-synchronised at both ends."""
    state = [prefill]

    def one(i):
        s = t + i
        _, state[0] = lt.decode_step(q[:, s:s + 1], k[:, s:s + 1], v[:, s:s + 1], g[:, s:s + 1],
                                     lam[:, s:s + 1], state[0], validate=validate)
    with torch.no_grad():
        return wall_ms(one, steps)


run(False, 5)  # warm-up
out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "B": B, "t": t, "D": D, "H": H,
       "steps": n, "ms_per_token": {"validate=True": run(True), "validate=False": run(False)}}
print(f"# {out['device']}, torch {out['torch']}, loglinear {getattr(loglinear, '__version__', '?')}; "
      f"B = {B}, t = {t}, H = {H}, K = V = {D}, {n} tokens")
# The in-place Decoder: eager (its host work per token, no synchronisation) and one step captured in
# a CUDA graph (a replay per token; the inputs copied into the graph's static tensors).
with torch.no_grad():
    dec = lt.Decoder(prefill, T)
    out["ms_per_token"]["Decoder.step"] = wall_ms(
        lambda i: dec.step(q[:, t + i:t + i + 1], k[:, t + i:t + i + 1], v[:, t + i:t + i + 1],
                           g[:, t + i:t + i + 1], lam[:, t + i:t + i + 1]), n)
    out["ms_per_token"]["Decoder.step in a CUDA graph (with 5 input copies)"] = decoder_graph_ms(
        lt.Decoder(prefill, T), (q, k, v, g, lam), t, n - 2)
for key, ms in out["ms_per_token"].items():
    print(f"{key if key.startswith('Decoder') else 'decode_step (' + key + ')'}: {ms:.3f} ms per token")

prof = cProfile.Profile()
prof.enable()
run(False)
prof.disable()
buf = io.StringIO()
pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(args.top)
print("\n## Python functions by own time (cProfile, validate=False)\n" + buf.getvalue())
out["cprofile"] = buf.getvalue()

with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU,
                                        torch.profiler.ProfilerActivity.CUDA]) as tp:
    run(False, 50)
table = tp.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top)
print("## torch operators and kernels (torch.profiler, 50 tokens, validate=False)\n" + table)
out["torch_profiler"] = table
if args.json:
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
