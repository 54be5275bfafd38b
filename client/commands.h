// The subcommands of embedsearch-client, as a library so tests and other
// tools can run them in-process. Each writes its normal output to `out` and
// its one-line errors to `err`, and returns an ExitCode (client/errors.h).
#ifndef EMBEDSEARCH_CLIENT_COMMANDS_H_
#define EMBEDSEARCH_CLIENT_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "client/connection.h"

namespace embedsearch {

// Runs subcommand `name` with the arguments that followed it. Global flags
// (--server, --token, --tls, --ca_cert, --timeout) may also appear among
// `args` and override `options`. Unknown subcommand or bad arguments: a
// message on `err` and kExitUsage.
int RunCommand(const std::string& name, const std::vector<std::string>& args,
               ClientOptions options, std::ostream& out, std::ostream& err);

// The whole command line after the program name: global flags, the
// subcommand, its arguments (global flags may also follow it). Options come
// from $EMBEDSEARCH_SERVER / $EMBEDSEARCH_TOKEN, then the flags. "--help"
// before the subcommand prints ProgramUsage(); no subcommand, an unknown
// one or bad flags: a message on `err` and kExitUsage.
int RunClient(const std::vector<std::string>& args, std::ostream& out,
              std::ostream& err);

// The program's usage text: synopsis, subcommands, global flags.
std::string ProgramUsage();

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_COMMANDS_H_
