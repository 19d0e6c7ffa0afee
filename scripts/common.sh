# Shared start of the README's two commands (scripts/tour.sh, scripts/test.sh); sourced, not run.
# Moves to the repository root, installs the Debian dependencies and builds everything in Release
# into build/. Defines `step` (a visible heading per stage) and `jobs` (parallel build jobs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=$(nproc)
step() { printf '\n==> %s\n' "$*"; }

step "installing dependencies (scripts/setup.sh)"
bash scripts/setup.sh

step "Release build (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
