// One structured line per request on stderr.
#ifndef EMBEDSEARCH_SERVER_REQUEST_LOG_H_
#define EMBEDSEARCH_SERVER_REQUEST_LOG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

enum class LogFormat { kNone, kText, kJson };

// "json", "text" (key=value) or "none".
bool ParseLogFormat(absl::string_view name, LogFormat* format);

struct RequestLogEntry {
  absl::string_view method;
  absl::Status status;
  double latency_ms = 0;
  absl::string_view peer;
  // Free-form detail, e.g. "messages=12" for a stream; may be empty.
  absl::string_view detail;
};

// The formatted line without the trailing newline (exposed for tests).
std::string FormatRequestLog(LogFormat format, const RequestLogEntry& entry);
// Writes the line with one fwrite so lines from threads never interleave.
void WriteRequestLog(LogFormat format, const RequestLogEntry& entry);
// A server event ("listening", "reloaded", ...) in the same format.
void WriteEventLog(LogFormat format, absl::string_view event,
                   absl::string_view detail);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_REQUEST_LOG_H_
