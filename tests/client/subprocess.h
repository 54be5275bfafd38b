// Child processes for the client tests: run a binary to completion and
// capture its output, or keep a server running for the test suite.
#ifndef EMBEDSEARCH_TESTS_CLIENT_SUBPROCESS_H_
#define EMBEDSEARCH_TESTS_CLIENT_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace embedsearch {

struct ProcessResult {
  int exit_code = -1;  // -1 if it did not exit normally
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with the arguments, `env` entries ("NAME=value")
// added to the environment, and waits for it. Output goes through temporary
// files, so large outputs cannot dead-lock on a pipe.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& env = {});

// A background process whose stdout+stderr go to `log_path`; killed
// (SIGTERM, then SIGKILL after 5 s) by Stop() or the destructor.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Stop(); }

  bool Start(const std::vector<std::string>& argv, const std::string& log_path);
  bool Running();
  void Stop();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_CLIENT_SUBPROCESS_H_
