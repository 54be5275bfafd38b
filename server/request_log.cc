#include "server/request_log.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace embedsearch {
namespace {

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// key=value values are quoted when they hold spaces, quotes or '='.
std::string TextValue(absl::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=\t\n") == absl::string_view::npos) {
    return std::string(s);
  }
  return absl::StrCat("\"", JsonEscape(s), "\"");
}

std::string Now() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                          absl::UTCTimeZone());
}

void WriteLine(const std::string& line) {
  std::string with_newline = line + "\n";
  std::fwrite(with_newline.data(), 1, with_newline.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

bool ParseLogFormat(absl::string_view name, LogFormat* format) {
  if (name == "json") {
    *format = LogFormat::kJson;
  } else if (name == "text") {
    *format = LogFormat::kText;
  } else if (name == "none") {
    *format = LogFormat::kNone;
  } else {
    return false;
  }
  return true;
}

std::string FormatRequestLog(LogFormat format, const RequestLogEntry& e) {
  const std::string code = absl::StatusCodeToString(e.status.code());
  if (format == LogFormat::kJson) {
    std::string line = absl::StrFormat(
        "{\"ts\":\"%s\",\"event\":\"request\",\"method\":\"%s\",\"code\":\"%s\","
        "\"latency_ms\":%.3f,\"peer\":\"%s\"",
        Now(), JsonEscape(e.method), code, e.latency_ms, JsonEscape(e.peer));
    if (!e.status.ok()) {
      absl::StrAppend(&line, ",\"message\":\"", JsonEscape(e.status.message()),
                      "\"");
    }
    if (!e.detail.empty()) {
      absl::StrAppend(&line, ",\"detail\":\"", JsonEscape(e.detail), "\"");
    }
    line += "}";
    return line;
  }
  std::string line = absl::StrFormat(
      "ts=%s event=request method=%s code=%s latency_ms=%.3f peer=%s", Now(),
      TextValue(e.method), code, e.latency_ms, TextValue(e.peer));
  if (!e.status.ok()) {
    absl::StrAppend(&line, " message=", TextValue(e.status.message()));
  }
  if (!e.detail.empty()) absl::StrAppend(&line, " detail=", TextValue(e.detail));
  return line;
}

void WriteRequestLog(LogFormat format, const RequestLogEntry& entry) {
  if (format == LogFormat::kNone) return;
  WriteLine(FormatRequestLog(format, entry));
}

void WriteEventLog(LogFormat format, absl::string_view event,
                   absl::string_view detail) {
  switch (format) {
    case LogFormat::kNone:
      return;
    case LogFormat::kJson:
      WriteLine(absl::StrFormat(
          "{\"ts\":\"%s\",\"event\":\"%s\",\"detail\":\"%s\"}", Now(),
          JsonEscape(event), JsonEscape(detail)));
      return;
    case LogFormat::kText:
      WriteLine(absl::StrFormat("ts=%s event=%s detail=%s", Now(),
                                TextValue(event), TextValue(detail)));
      return;
  }
}

}  // namespace embedsearch
