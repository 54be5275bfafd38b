#include "tests/trainer/trainer_testing.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace testing {

std::string FreshDir(const std::string& prefix, const std::string& name) {
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/", prefix, "_", name, "_", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::pair<int, std::string> RunTrainer(const std::string& args) {
  const std::string command = absl::StrCat(
      EMBEDSEARCH_BINARY_DIR, "/trainer/embedsearch-trainer ", args, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    out.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace testing
}  // namespace embedsearch
