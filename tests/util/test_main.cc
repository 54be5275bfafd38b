// The main() of every GoogleTest binary of the suite (in place of
// gtest_main): it gives the process a scratch directory of its own and
// removes it when every test passed.
//
// Why: the tests write bundles, catalogs, checkpoints and server logs under
// TMPDIR (testing::MakeTempDir) or ::testing::TempDir(). ctest runs each test
// case as a process of its own, so a run of scripts/test used to leave over a
// thousand directories (gigabytes) in /tmp. Here both variables point into
// one fresh directory per process, so helpers, tests and the servers or
// trainers they start (which inherit the environment) all write there:
//
//   $TMPDIR (or /tmp)/embedsearch-test-XXXXXX/
//
// Kept when a test failed or the process dies (its files are the evidence;
// the path is printed), and kept always with EMBEDSEARCH_KEEP_TEST_FILES=1.
#include <stdio.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "gtest/gtest.h"

namespace {

// Creates the scratch directory under the caller's TMPDIR and points TMPDIR
// and TEST_TMPDIR (read by ::testing::TempDir()) at it. Returns "" and leaves
// the environment alone when it cannot be created.
std::string EnterScratchDirectory() {
  const char* parent = getenv("TMPDIR");
  std::string path = std::string(parent != nullptr && parent[0] != '\0'
                                     ? parent
                                     : "/tmp") +
                     "/embedsearch-test-XXXXXX";
  if (mkdtemp(path.data()) == nullptr) {
    perror("test_main: mkdtemp");
    return "";
  }
  setenv("TMPDIR", path.c_str(), /*overwrite=*/1);
  setenv("TEST_TMPDIR", path.c_str(), /*overwrite=*/1);
  return path;
}

void LeaveScratchDirectory(const std::string& path, bool passed) {
  if (path.empty()) return;
  const char* keep = getenv("EMBEDSEARCH_KEEP_TEST_FILES");
  if (!passed || (keep != nullptr && std::string(keep) == "1")) {
    fprintf(stderr, "test files kept in %s\n", path.c_str());
    return;
  }
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) {
    fprintf(stderr, "test_main: cannot remove %s: %s\n", path.c_str(),
            error.message().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string scratch = EnterScratchDirectory();
  const int result = RUN_ALL_TESTS();
  LeaveScratchDirectory(scratch, result == 0);
  return result;
}
