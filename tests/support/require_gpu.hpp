// REQUIRE_GPU(): the one way a GPU test skips where no GPU can run it (CI), with a visible message.
#pragma once

#include <loglinear/cuda/device.hpp>

#include <catch2/catch_test_macros.hpp>

/// Skips the test case with a visible message when no GPU can run here (CI).
#define REQUIRE_GPU()                                                                  \
  do {                                                                                 \
    if (!loglinear::cuda::device_available())                                          \
      SKIP("no CUDA device: the GPU backend is compiled but cannot run here");         \
  } while (0)
