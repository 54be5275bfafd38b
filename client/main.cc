// embedsearch-client: the command-line client of the embedsearch service.
// The client library parses the whole line (global flags, subcommand and
// its flags: client/args.h) and runs the subcommand (client/commands.h).
#include <iostream>
#include <string>
#include <vector>

#include "client/commands.h"

int main(int argc, char** argv) {
  return embedsearch::RunClient(std::vector<std::string>(argv + 1, argv + argc),
                                std::cout, std::cerr);
}
