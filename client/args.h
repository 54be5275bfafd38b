// Flags of one subcommand: "--name=value", "--name value", "--flag",
// "--noflag", "-o value" (single-letter names), "--" ends the flags.
// absl::flags parses the global flags before the subcommand; this parses
// what follows it, including global flags given after the subcommand.
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
