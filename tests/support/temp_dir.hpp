// A fresh directory under the system's temporary directory for tests that write files (resume,
// trainer), removed with everything in it when the test ends, passed or failed.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace loglinear::test {

/// Creates <temp>/<stem><random> on construction; removes it recursively on destruction.
struct TempDir {
  std::filesystem::path path;  ///< the directory
  explicit TempDir(const std::string& stem = "loglinear_test_") {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / (stem + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;  // best effort: a failed cleanup must not throw from a destructor
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// Path of `name` inside the directory, as a string.
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace loglinear::test
