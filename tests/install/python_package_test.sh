#!/usr/bin/env bash
# python_package_test.sh BUILD_DIR WORK_DIR PACKAGE_DIR: installs only the Python component of
# BUILD_DIR into a fresh temporary prefix (mktemp, outside the build and source trees; removed at
# exit) and imports it from another temporary directory, with nothing but the installed package
# on the path (issue 15, item 7). WORK_DIR keeps the install log.
set -euo pipefail
build=$1 work=$2 pkgdir=$3
rm -rf "$work" && mkdir -p "$work"
prefix=$(mktemp -d -t loglinear-prefix.XXXXXX)
scratch=$(mktemp -d -t loglinear-import.XXXXXX)
trap 'rm -rf "$prefix" "$scratch"' EXIT
cmake --install "$build" --prefix "$prefix" --component python > "$work/install.log"
site="$prefix/$pkgdir"
[ -f "$site/loglinear/__init__.py" ] && [ -f "$site/loglinear/torch.py" ] ||
  { echo "python_package_test.sh: $site/loglinear lacks __init__.py or torch.py"; ls -R "$prefix"; exit 1; }
cd "$scratch"
# -I: no PYTHONPATH, no user site, no current directory on the path; only the installed package.
/usr/bin/python3 -I - <<PY
import os, sys
sys.path.insert(0, "$site")
import numpy as np, torch
import loglinear, loglinear.torch as lt
site = os.path.realpath("$site")
for m in (loglinear, loglinear._loglinear, lt):
    assert os.path.realpath(m.__file__).startswith(site + os.sep), f"{m.__name__} imported from {m.__file__}, not {site}"
# The installed op computes what the installed module's recurrent form does (float64, rounding only).
g = torch.Generator().manual_seed(7)
B, T, G, H, K, V = 2, 37, 1, 2, 5, 3
L = loglinear.num_levels(T)
q, k = torch.randn(B, T, G, K, generator=g, dtype=torch.float64), torch.randn(B, T, G, K, generator=g, dtype=torch.float64)
v = torch.randn(B, T, H, V, generator=g, dtype=torch.float64)
gl = -torch.rand(B, T, H, generator=g, dtype=torch.float64)
lam = torch.rand(B, T, H, L, generator=g, dtype=torch.float64)
o, _ = lt.chunk_log_linear_attn(q, k, v, gl, lam, chunk_size=8)
o_rec, _ = lt.chunk_log_linear_attn(q, k, v, gl, lam, form="recurrent")
err = (o - o_rec).abs().max().item() / o_rec.abs().max().item()
assert err <= 1e-12, f"installed op: chunked vs recurrent {err:.3g} > 1e-12"
print(f"installed package at {site}: imports, chunked = recurrent within {err:.2g}")
PY
