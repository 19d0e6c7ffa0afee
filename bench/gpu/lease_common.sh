# Sourced by the GPU lease scripts (lease_check, torch_check, lm_tf32, decode_bench, mqar_speed, profile_lease):
# the one way they keep their logs and build the two trees, so that a flag of the build is set in
# one place. Run from the repository root.

# lease_begin OUTDIR NAME: $out is a fresh folder for the logs, $sum its summary.txt; at exit,
# summary.txt and NAME.tgz (everything in $out) go to OUTDIR (the lease's $OUT).
lease_begin() {
  final=$1
  out=$(mktemp -d)
  sum="$out/summary.txt"
  trap "cp '$sum' '$final/' 2>/dev/null; tar -czf '$final/$2.tgz' -C '$out' ." EXIT
}

# build_gpu TARGET...: build-gpu in Release with CUDA for sm_90 (no Python, no examples), then the
# targets; on failure the log's tail goes to stdout and $sum, and the status is 1.
build_gpu() {
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=OFF \
    -DLOGLINEAR_BUILD_EXAMPLES=OFF -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/cmake-gpu.log" 2>&1 ||
    { tail -20 "$out/cmake-gpu.log" | tee -a "$sum"; return 1; }
  cmake --build build-gpu -j "$(nproc)" --target "$@" > "$out/build-gpu.log" 2>&1 ||
    { grep -B2 -A6 error "$out/build-gpu.log" | head -60 | tee -a "$sum"; return 1; }
}

# build_torch PYTHON: build-torch, the Python package with CUDA against that interpreter (torch
# there), in Release for sm_90; failures as build_gpu.
build_torch() {
  cmake -S . -B build-torch -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOGLINEAR_CUDA=ON -DLOGLINEAR_PYTHON=ON \
    -DLOGLINEAR_BUILD_TESTS=OFF -DLOGLINEAR_BUILD_BENCH=OFF -DLOGLINEAR_BUILD_EXAMPLES=OFF -DLOGLINEAR_MPI=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DPython_EXECUTABLE="$1" > "$out/cmake-torch.log" 2>&1 ||
    { tail -30 "$out/cmake-torch.log" | tee -a "$sum"; return 1; }
  cmake --build build-torch -j "$(nproc)" --target loglinear_python > "$out/build-torch.log" 2>&1 ||
    { grep -B2 -A8 error "$out/build-torch.log" | head -60 | tee -a "$sum"; return 1; }
}

# lease_stamp: the GPU, its driver and the commit (with -dirty for uncommitted changes) into
# stdout and $sum, so that every figure of a lease names what produced it.
lease_stamp() {
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 | tee -a "$sum"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)" |
    tee -a "$sum"
}

# train_at_precisions TAG LINES [bench_train.py arguments...]: bench_train.py (build-gpu's
# loglinear-train, GPU side only) once per loglinear-train precision flag set given as the words
# after the arguments' "--": TAG_1, TAG_2, ... in $out, each run's last LINES lines into $sum.
# Usage: train_at_precisions mqar 3 --only mqar --concurrency mps -- "" "--attention bf16"
train_at_precisions() {
  local tag=$1 lines=$2 i=0 args=() flags
  shift 2
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  for flags in "$@"; do
    i=$((i + 1))
    echo "== $tag, loglinear-train ${flags:-(float32, the defaults)}" | tee -a "$sum"
    timeout 150 python3 bench/gpu/bench_train.py --binary build-gpu/apps/loglinear-train --devices cuda \
      "${args[@]}" --gpu-flags "$flags" --out "$out/${tag}_$i" > "$out/${tag}_$i.txt" 2>&1
    echo "(rc $?)" | tee -a "$sum"
    tail -"$lines" "$out/${tag}_$i.txt" | tee -a "$sum"
  done
}
