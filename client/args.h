// The client's command line, parsed by CLI11 (Debian's libcli11-dev) from
// one table of flag definitions per subcommand plus the global flags:
// "--name=value", "--name value", "--flag", "--noflag", "--flag=false",
// "-o value" (one-letter names), "--" ends the flags. The same parser reads
// the global flags before the subcommand (RunClient) and, with the
// subcommand's own, what follows it. We keep the FlagDef table (not CLI11's
// App) as the interface because it also drives each subcommand's --help
// text and the typed accessors of ParsedArgs.
#ifndef EMBEDSEARCH_CLIENT_ARGS_H_
#define EMBEDSEARCH_CLIENT_ARGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace embedsearch {

struct FlagDef {
  enum class Kind { kBool, kString, kInt, kDouble };
  std::string name;  // without dashes; one letter means "-x" also works
  Kind kind = Kind::kString;
  std::string default_value;  // shown in --help; used when absent
  std::string help;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // every flag: given or default
  std::map<std::string, bool> given;          // flags present on the line
  bool help = false;                          // --help or -h

  bool Given(const std::string& name) const { return given.count(name) > 0; }
  const std::string& String(const std::string& name) const;
  bool Bool(const std::string& name) const;
  int64_t Int(const std::string& name) const;
  double Double(const std::string& name) const;
};

// Errors (InvalidArgument): unknown flag, missing value, a value that is not
// a number for an int/double flag, or not true/false for a bool flag.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<FlagDef>& defs,
                                     const std::vector<std::string>& args);

// "  --name=<default>  help" lines for --help.
std::string FlagsHelp(const std::vector<FlagDef>& defs);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CLIENT_ARGS_H_
