"""The timers of the Python GPU benchmarks: timed() (bench_fla.py, bench_sdpa.py,
torch_op_bench.py), CUDA events around `reps` calls after one warm-up call, so the time is the
GPU's, not the launch queue's; wall_ms() and decoder_graph_ms() (bench_decode_torch.py,
profile_decode_torch.py), the wall time per decoded token, host work included."""
import time

import torch


def timed(fn, reps=10):
    """Mean milliseconds of fn() over `reps` calls, after one warm-up call."""
    fn(); torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record(); torch.cuda.synchronize()
    return a.elapsed_time(b) / reps


def wall_ms(step, n):
    """Mean wall milliseconds of step(i) for i = 0 .. n-1, CUDA-synchronised before and after: the
    host's work counts too (what a decoding loop waits for per token), unlike timed()."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(n):
        step(i)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / n


def decoder_graph_ms(decoder, inputs, first, n):
    """Mean wall milliseconds per token of a loglinear.torch.Decoder step captured in a CUDA graph:
    per token s, the five inputs' rows s (q, k, v, g, level_scales, each [B,T,...]) are copied into
    the graph's static tensors, then one replay. Token `first` is an eager warm-up, `first` + 1 the
    untimed first replay (it uploads the graph), and the next n are timed."""
    static = [u[:, first:first + 1].clone() for u in inputs]
    decoder.step(*static)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # records one step; nothing runs until a replay
        decoder.step(*static)

    def replay(i):
        s = first + 1 + i
        for dst, u in zip(static, inputs):
            dst.copy_(u[:, s:s + 1])
        graph.replay()
    replay(0)
    return wall_ms(lambda i: replay(i + 1), n)
