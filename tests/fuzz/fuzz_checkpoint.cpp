// libFuzzer target: hostile bytes for the checkpoint loader (see checkpoint_harness.hpp for the
// input layout and the contract). Built by tests/fuzz/CMakeLists.txt with clang; run it through
// scripts/fuzz.sh, or by hand:
//   build-fuzz/fuzz_checkpoint -max_total_time=60 build-fuzz/corpus/checkpoint tests/fuzz/corpus/checkpoint
// A crash writes its input to build-fuzz/artifacts/checkpoint/: commit it under
// tests/fuzz/regressions/checkpoint/ with a line in tests/fuzz/README.md.
#include "checkpoint_harness.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  try {
    loglinear::fuzz::checkpoint_one_input(data, size);
  } catch (const loglinear::fuzz::ContractViolation& e) {
    std::fprintf(stderr, "contract violation: %s\n", e.what());
    std::abort();
  }
  return 0;
}
