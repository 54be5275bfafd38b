// Helpers shared by the trainer tests: a fresh work directory per test and
// a run of the embedsearch-trainer binary. Not thread-safe (tests call them
// from the test body); errors abort the test through gtest assertions in
// the caller, not here.
#ifndef EMBEDSEARCH_TESTS_TRAINER_TRAINER_TESTING_H_
#define EMBEDSEARCH_TESTS_TRAINER_TRAINER_TESTING_H_

#include <string>
#include <utility>

namespace embedsearch {
namespace testing {

// ::testing::TempDir()/<prefix>_<name>_<pid>, emptied and created: a work
// directory no earlier run of the same test left anything in.
std::string FreshDir(const std::string& prefix, const std::string& name);

// Runs build/trainer/embedsearch-trainer with `args` (shell words) and
// returns its exit code (-1 when it did not exit normally) and its stdout
// and stderr together.
std::pair<int, std::string> RunTrainer(const std::string& args);

}  // namespace testing
}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_TRAINER_TRAINER_TESTING_H_
