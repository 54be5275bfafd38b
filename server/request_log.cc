#include "server/request_log.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/util/json.h"

namespace embedsearch {
namespace {

// key=value values are quoted when they hold spaces, quotes or '='.
std::string TextValue(absl::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=\t\n") == absl::string_view::npos) {
    return std::string(s);
  }
  return JsonText(Json(std::string(s)));  // a quoted string with JSON escapes
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
    Json line = {{"ts", Now()},
                 {"event", "request"},
                 {"method", std::string(e.method)},
                 {"code", code},
                 {"latency_ms", RoundDecimals(e.latency_ms, 3)},
                 {"peer", std::string(e.peer)}};
    if (!e.status.ok()) line["message"] = std::string(e.status.message());
    if (!e.detail.empty()) line["detail"] = std::string(e.detail);
    return JsonText(line);
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
      WriteLine(JsonText(Json{{"ts", Now()},
                              {"event", std::string(event)},
                              {"detail", std::string(detail)}}));
      return;
    case LogFormat::kText:
      WriteLine(absl::StrFormat("ts=%s event=%s detail=%s", Now(),
                                TextValue(event), TextValue(detail)));
      return;
  }
}

}  // namespace embedsearch
