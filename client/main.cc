// embedsearch-client: the command-line client of the embedsearch service.
// absl::flags parses the global flags before the subcommand; the subcommand
// and its own flags are parsed by the client library (client/commands.h).
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/errors.h"

// Empty means "not given": then $EMBEDSEARCH_SERVER / $EMBEDSEARCH_TOKEN,
// then the built-in default, apply.
ABSL_FLAG(std::string, server, "",
          "host:port of the server (default: $EMBEDSEARCH_SERVER, else "
          "localhost:50051)");
ABSL_FLAG(std::string, token, "",
          "token for add/remove/reload (default: $EMBEDSEARCH_TOKEN)");
ABSL_FLAG(bool, tls, false, "connect with TLS");
ABSL_FLAG(std::string, ca_cert, "",
          "PEM file of the CA that signed the server certificate (with --tls)");
ABSL_FLAG(double, timeout, 10, "seconds per call");

namespace {

// Index of the subcommand in argv (argc if none): the first argument that is
// neither a flag nor the value of a global flag given as "--flag value".
int FindSubcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (arg[0] != '-' || std::strcmp(arg, "-") == 0) return i;
    if (std::strcmp(arg, "--") == 0) return i + 1;
    if (std::strchr(arg, '=') != nullptr) continue;
    const char* name = arg + (arg[1] == '-' ? 2 : 1);
    for (const char* valued : {"server", "token", "ca_cert", "timeout"}) {
      if (std::strcmp(name, valued) == 0) {
        ++i;
        break;
      }
    }
  }
  return argc;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(embedsearch::ProgramUsage());
  const int sub = FindSubcommand(argc, argv);
  for (int i = 1; i < sub; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
        std::strcmp(argv[i], "-help") == 0) {
      std::cout << embedsearch::ProgramUsage();
      return embedsearch::kExitOk;
    }
  }
  // Only the part before the subcommand is absl's.
  std::vector<char*> global(argv, argv + sub);
  if (sub < argc && std::strcmp(argv[sub - 1], "--") == 0) global.pop_back();
  absl::ParseCommandLine(static_cast<int>(global.size()), global.data());

  embedsearch::ClientOptions options;
  embedsearch::ApplyEnvironment(options);  // flags below take precedence
  if (!absl::GetFlag(FLAGS_server).empty()) {
    options.server = absl::GetFlag(FLAGS_server);
  }
  if (!absl::GetFlag(FLAGS_token).empty()) {
    options.token = absl::GetFlag(FLAGS_token);
  }
  options.tls = absl::GetFlag(FLAGS_tls);
  options.ca_cert = absl::GetFlag(FLAGS_ca_cert);
  options.timeout_seconds = absl::GetFlag(FLAGS_timeout);

  if (sub >= argc) {
    std::cerr << "error: no command given\n\n" << embedsearch::ProgramUsage();
    return embedsearch::kExitUsage;
  }
  std::vector<std::string> args(argv + sub + 1, argv + argc);
  return embedsearch::RunCommand(argv[sub], args, options, std::cout, std::cerr);
}
