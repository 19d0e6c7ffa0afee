#!/usr/bin/env bash
# Bounded libFuzzer runs of the hostile-input entry points (issue 11): the checkpoint loader and
# the task generators, under ASan + UBSan. Configures tests/fuzz/ on its own with clang in
# build-fuzz/ (only Eigen and clang's libFuzzer are needed: Debian's clang, libclang-rt-14-dev),
# builds the two fuzzers, replays every committed regression input, then fuzzes each target for
# LOGLINEAR_FUZZ_SECONDS (default 20) from its seed corpus. Any crash, hang (> 10 s per input),
# large allocation (> 256 MiB) or broken error contract fails, and libFuzzer writes the input to
# build-fuzz/artifacts/<target>/: commit it under tests/fuzz/regressions/<target>/ (README there).
# Usage:  bash scripts/fuzz.sh            (about 1-2 minutes on 2 cores, ccache helps the build)
#         LOGLINEAR_FUZZ_SECONDS=300 bash scripts/fuzz.sh    (a longer campaign)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${LOGLINEAR_FUZZ_SECONDS:-20}
jobs=$(nproc)

step() { printf '\n==> %s\n' "$*"; }

if ! command -v clang++ >/dev/null; then
  echo "scripts/fuzz.sh: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi

start=$SECONDS
step "configuring tests/fuzz with clang (build-fuzz/)"
# The default campaign also stops at 2M inputs; a longer one runs for its time alone (-runs=-1).
runs=2000000
[ "$seconds" -gt 20 ] && runs=-1
cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DLOGLINEAR_FUZZ_SECONDS="$seconds" -DLOGLINEAR_FUZZ_RUNS="$runs"
step "building fuzz_checkpoint and fuzz_tasks"
cmake --build build-fuzz -j "$jobs"

step "replaying the committed regression inputs"
ctest --test-dir build-fuzz --output-on-failure -L regression
step "fuzzing each target for ${seconds} s"
ctest --test-dir build-fuzz --output-on-failure -j "$jobs" -L fuzz -LE regression
step "fuzzing passed in $((SECONDS - start)) s"
