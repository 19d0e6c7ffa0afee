"""The one timer of the Python peer benchmarks (bench_fla.py, bench_sdpa.py): CUDA events around
`reps` calls after one warm-up call, so the time is the GPU's, not the launch queue's."""
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
