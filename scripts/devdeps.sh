#!/usr/bin/env bash
# Builds .devdeps/ (git-ignored): the header-only and static dependencies that the GPU machine's
# image lacks (Eigen, Catch2, CLI11, nlohmann-json, pybind11), copied from this machine's Debian
# packages (scripts/setup.sh installs them), to carry to the device with a lease:
#     bash scripts/devdeps.sh            # here, once per checkout (about 17 MB)
#     export CMAKE_PREFIX_PATH=$PWD/.devdeps/usr    # there, before cmake
# --slim leaves out what an experiment build (tests, Python off) does not need: Catch2, pybind11
# and Eigen's unsupported/ (about 8 MB), for leases whose carry is close to the 64 MiB limit.
set -euo pipefail
cd "$(dirname "$0")/.."
slim=0
[ "${1:-}" = "--slim" ] && slim=1
packages=(libeigen3-dev libcli11-dev nlohmann-json3-dev)
[ $slim = 1 ] || packages+=(libcatch2-dev pybind11-dev)
rm -rf .devdeps && mkdir -p .devdeps
for p in "${packages[@]}"; do
  dpkg -L "$p" > /dev/null 2>&1 || { echo "devdeps.sh: $p is not installed (bash scripts/setup.sh)" >&2; exit 1; }
  dpkg -L "$p" | while read -r f; do
    [ -f "$f" ] || continue
    case "$f" in /usr/share/doc/*|/usr/share/man/*) continue ;; esac
    mkdir -p ".devdeps$(dirname "$f")" && cp "$f" ".devdeps$f"
  done
done
[ $slim = 1 ] && rm -rf .devdeps/usr/include/eigen3/unsupported
echo "devdeps.sh: .devdeps/usr ($(du -sh .devdeps | cut -f1)): ${packages[*]}"
