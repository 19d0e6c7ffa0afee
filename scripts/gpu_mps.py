"""NVIDIA's Multi-Process Service for runs that share one GPU (scripts/sweep.py --device cuda --jobs N,
bench/gpu/bench_train.py --mps).

Without MPS the GPU time-slices between processes: N runs of a tiny model take N times as long as
one, since no two processes' kernels ever overlap. Under MPS the processes' kernels run side by
side on the GPU's SMs. The daemon started here uses private pipe and log folders (so it never meets
a daemon someone else runs) and is stopped on exit; it changes no device setting.
"""
import contextlib
import os
import shutil
import subprocess
import tempfile


@contextlib.contextmanager
def mps_daemon(enabled=True):
    """Runs the body with an MPS control daemon whose pipe folder is exported in the environment
    (CUDA_MPS_PIPE_DIRECTORY), so child processes started inside use it. Yields True when MPS is
    running, False when it is disabled or unavailable (then runs share the GPU by time-slicing)."""
    control = shutil.which("nvidia-cuda-mps-control")
    if not enabled or control is None:
        yield False
        return
    root = tempfile.mkdtemp(prefix="loglinear-mps-")
    env = dict(os.environ, CUDA_MPS_PIPE_DIRECTORY=os.path.join(root, "pipe"),
               CUDA_MPS_LOG_DIRECTORY=os.path.join(root, "log"))
    os.makedirs(env["CUDA_MPS_PIPE_DIRECTORY"])
    os.makedirs(env["CUDA_MPS_LOG_DIRECTORY"])
    if subprocess.call([control, "-d"], env=env) != 0:
        shutil.rmtree(root, ignore_errors=True)
        yield False
        return
    saved = {k: os.environ.get(k) for k in ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")}
    os.environ.update({k: env[k] for k in saved})
    try:
        yield True
    finally:
        subprocess.run([control], input="quit\n", text=True, env=env)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(root, ignore_errors=True)
