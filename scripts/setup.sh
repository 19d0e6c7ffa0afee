#!/usr/bin/env bash
# Installs every build, test, docs and notebook dependency of loglinear from Debian 12's own
# packages (bookworm + bookworm-backports for Catch2 v3). Idempotent; run as root.
# Nothing is downloaded from anywhere but Debian's archive.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh: must run as root (it calls apt-get); try: sudo bash scripts/setup.sh" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Catch2 v3 (native SKIP, compiled main) lives in bookworm-backports.
backports=/etc/apt/sources.list.d/loglinear-backports.list
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bookworm-backports main" > "$backports"
fi

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libeigen3-dev
  libcli11-dev nlohmann-json3-dev
  python3-dev pybind11-dev python3-pybind11 python3-numpy python3-matplotlib
  jupyter-nbconvert python3-nbclient python3-ipykernel python3-nbformat
  doxygen graphviz libjs-mathjax
  bible-kjv bible-kjv-text
)

missing=()
for p in "${packages[@]}" libcatch2-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports libcatch2-dev
else
  echo "[setup] all Debian packages already installed"
fi
