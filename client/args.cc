#include "client/args.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"

namespace embedsearch {
namespace {

const FlagDef* Find(const std::vector<FlagDef>& defs, const std::string& name) {
  for (const FlagDef& def : defs) {
    if (def.name == name) return &def;
  }
  return nullptr;
}

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
  for (const FlagDef& def : defs) parsed.values[def.name] = def.default_value;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      parsed.help = true;
      continue;
    }
    // A negative number is a positional value, not a flag.
    if (arg.size() > 1 && (isdigit(static_cast<unsigned char>(arg[1])))) {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string body = absl::StartsWith(arg, "--") ? arg.substr(2) : arg.substr(1);
    std::string name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    const FlagDef* def = Find(defs, name);
    if (def == nullptr && !has_value && absl::StartsWith(name, "no")) {
      const FlagDef* negated = Find(defs, name.substr(2));
      if (negated != nullptr && negated->kind == FlagDef::Kind::kBool) {
        parsed.values[negated->name] = "false";
        parsed.given[negated->name] = true;
        continue;
      }
    }
    if (def == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
    }
    if (!has_value) {
      if (def->kind == FlagDef::Kind::kBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", def->name, " needs a value"));
      }
    }
    if (absl::Status s = CheckValue(*def, value); !s.ok()) return s;
    parsed.values[def->name] = value;
    parsed.given[def->name] = true;
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
