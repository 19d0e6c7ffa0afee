#!/usr/bin/env python3
"""Every preset of scripts/sweep.py is a grid that loglinear-train accepts: each cell and mode
passes --check-config (the checks a run makes before it generates data). An impossible cell
(here --chunk 3, not a power of two) makes the sweep stop before it starts anything, naming the cell and the
binary's message. exp13-v2's mqar13 grid had such a cell (64 pairs, more than the 63 keys of the
sources' vocabulary) and lost 40 runs to it on a GPU lease.

Usage: test_sweep_presets.py LOGLINEAR_TRAIN"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SWEEP = os.path.join(ROOT, "scripts", "sweep.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import sweep  # noqa: E402

binary = sys.argv[1]
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for preset in sorted(sweep.PRESETS):
        p = subprocess.run([sys.executable, SWEEP, "--preset", preset, "--binary", binary, "--device", "cpu",
                            "--check-only", "--no-report", "--out", os.path.join(tmp, preset)],
                           capture_output=True, text=True, timeout=300)
        ok = p.returncode == 0 and "passes --check-config" in p.stdout
        print(f"{'ok  ' if ok else 'FAIL'} preset {preset}: {(p.stdout + p.stderr).strip()}")
        failed += not ok
    bad = os.path.join(tmp, "bad")
    p = subprocess.run([sys.executable, SWEEP, "--preset", "mqar13", "--cells", "T128_kv8_eval256", "--binary",
                        binary, "--device", "cpu", "--no-report", "--out", bad, "--", "--chunk", "3"],
                       capture_output=True, text=True, timeout=300)
    started = [f for f in os.listdir(bad) if f.endswith((".json", ".log"))] if os.path.isdir(bad) else []
    ok = (p.returncode != 0 and "cannot run" in p.stderr and "nothing started" in p.stderr
          and "T128_kv8_eval256" in p.stderr and not started)
    print(f"{'ok  ' if ok else 'FAIL'} an impossible cell stops the sweep before any run: rc {p.returncode}, "
          f"runs started {started}, message: {p.stderr.strip()[:300]}")
    failed += not ok
    # The binary's own check: 64 pairs at T = 256 (exp13-v2's cell) is refused with the flags named.
    p = subprocess.run([binary, "--task", "mqar", "--length", "256", "--pairs", "64", "--check-config"],
                       capture_output=True, text=True, timeout=60)
    ok = p.returncode == 2 and "--pairs/--length" in p.stderr and "63" in p.stderr and "config ok" not in p.stdout
    print(f"{'ok  ' if ok else 'FAIL'} --check-config refuses 64 pairs at T = 256: rc {p.returncode}, {p.stderr.strip()}")
    failed += not ok
    p = subprocess.run([binary, "--task", "mqar", "--length", "256", "--pairs", "63", "--check-config"],
                       capture_output=True, text=True, timeout=60)
    ok = p.returncode == 0 and p.stdout.strip() == "config ok"
    print(f"{'ok  ' if ok else 'FAIL'} --check-config accepts 63 pairs at T = 256: rc {p.returncode}, {p.stdout.strip()}")
    failed += not ok
sys.exit(1 if failed else 0)
