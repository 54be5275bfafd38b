#include "client/args.h"

#include <algorithm>

#include "CLI/CLI.hpp"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "core/util/status_macros.h"

namespace embedsearch {
namespace {

absl::Status CheckValue(const FlagDef& def, const std::string& value) {
  switch (def.kind) {
    case FlagDef::Kind::kBool:
      if (value != "true" && value != "false" && value != "1" && value != "0") {
        return absl::InvalidArgumentError(
            absl::StrCat("--", def.name, " takes true or false, not '", value, "'"));
      }
      break;
    case FlagDef::Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", def.name, " takes an integer, not '", value, "'"));
      }
      break;
    }
    case FlagDef::Kind::kDouble: {
      double v;
      if (!absl::SimpleAtod(value, &v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", def.name, " takes a number, not '", value, "'"));
      }
      break;
    }
    case FlagDef::Kind::kString:
      break;
  }
  return absl::OkStatus();
}

}  // namespace

const std::string& ParsedArgs::String(const std::string& name) const {
  static const std::string* const kEmpty = new std::string;
  auto it = values.find(name);
  return it == values.end() ? *kEmpty : it->second;
}

bool ParsedArgs::Bool(const std::string& name) const {
  const std::string& v = String(name);
  return v == "true" || v == "1";
}

int64_t ParsedArgs::Int(const std::string& name) const {
  int64_t v = 0;
  if (!absl::SimpleAtoi(String(name), &v)) return 0;
  return v;
}

double ParsedArgs::Double(const std::string& name) const {
  double v = 0;
  if (!absl::SimpleAtod(String(name), &v)) return 0;
  return v;
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<FlagDef>& defs,
                                     const std::vector<std::string>& args) {
  ParsedArgs parsed;
  CLI::App app;
  app.set_help_flag();  // our own --help text (FlagsHelp), so our own flag
  app.add_flag("-h,--help", parsed.help);
  app.add_option("args", parsed.positional);
  std::map<std::string, CLI::Option*> options;
  std::map<std::string, std::string> values;  // std::map: stable addresses
  std::map<std::string, bool> bools;
  for (const FlagDef& def : defs) {
    parsed.values[def.name] = def.default_value;
    // One-letter flags also as "-x" ("-o FILE").
    const std::string name = def.name.size() == 1
                                 ? absl::StrCat("-", def.name, ",--", def.name)
                                 : absl::StrCat("--", def.name);
    if (def.kind == FlagDef::Kind::kBool) {
      // --flag, --noflag, --flag=true|false|1|0; the last one given wins.
      options[def.name] = app.add_flag(absl::StrCat(name, ",!--no", def.name),
                                       bools[def.name]);
    } else {
      options[def.name] = app.add_option(name, values[def.name]);
    }
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11's order
  try {
    app.parse(reversed);
  } catch (const CLI::ExtrasError&) {
    const std::vector<std::string> extras = app.remaining();
    return absl::InvalidArgumentError(
        absl::StrCat("unknown flag ", extras.empty() ? "" : extras.front()));
  } catch (const CLI::ArgumentMismatch& e) {
    for (const auto& [flag, option] : options) {
      if (absl::StrContains(e.what(), option->get_name())) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", flag, " needs a value"));
      }
    }
    return absl::InvalidArgumentError(e.what());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  for (const FlagDef& def : defs) {
    if (options[def.name]->count() == 0) continue;
    parsed.given[def.name] = true;
    if (def.kind == FlagDef::Kind::kBool) {
      parsed.values[def.name] = bools[def.name] ? "true" : "false";
      continue;
    }
    RETURN_IF_ERROR(CheckValue(def, values[def.name]));
    parsed.values[def.name] = values[def.name];
  }
  return parsed;
}

std::string FlagsHelp(const std::vector<FlagDef>& defs) {
  std::string out;
  for (const FlagDef& def : defs) {
    // Single-letter string flags are the "-o FILE" kind; the rest are
    // spelled with two dashes (both spellings are accepted for all).
    const bool short_form =
        def.name.size() == 1 && def.kind == FlagDef::Kind::kString;
    std::string left = short_form ? absl::StrCat("  -", def.name)
                                  : absl::StrCat("  --", def.name);
    if (def.kind != FlagDef::Kind::kBool) {
      absl::StrAppend(&left, def.default_value.empty()
                                 ? std::string("=...")
                                 : absl::StrCat("=", def.default_value));
    }
    absl::StrAppend(&out, absl::StrFormat("%-28s %s\n", left, def.help));
  }
  return out;
}

}  // namespace embedsearch
