// libFuzzer target: impossible, huge and ordinary settings for the task generators (see
// tasks_harness.hpp for the input layout and the contract). Built by tests/fuzz/CMakeLists.txt
// with clang; run it through scripts/fuzz.sh, or by hand:
//   build-fuzz/fuzz_tasks -max_total_time=60 build-fuzz/corpus/tasks tests/fuzz/corpus/tasks
// A crash writes its input to build-fuzz/artifacts/tasks/: commit it under
// tests/fuzz/regressions/tasks/ with a line in tests/fuzz/README.md.
#include "tasks_harness.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  try {
    loglinear::fuzz::tasks_one_input(data, size);
  } catch (const loglinear::fuzz::ContractViolation& e) {
    std::fprintf(stderr, "contract violation: %s\n", e.what());
    std::abort();
  }
  return 0;
}
