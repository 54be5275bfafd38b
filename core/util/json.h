// JSON text for the server's request log, the trainer's metrics and the
// client's --json output. One library, nlohmann::json (Debian's
// nlohmann-json3-dev, header-only), does the syntax and the escaping; we
// only decide how many digits a number keeps.
#ifndef EMBEDSEARCH_CORE_UTIL_JSON_H_
#define EMBEDSEARCH_CORE_UTIL_JSON_H_

#include <string>

#include "nlohmann/json.hpp"

namespace embedsearch {

// A JSON value whose objects keep their keys in insertion order (the order
// our outputs have always had).
using Json = nlohmann::ordered_json;

// One line of compact JSON ({"a":1,"b":"x"}). Never throws: bytes that are
// not UTF-8 become U+FFFD; NaN and infinities print as null.
std::string JsonText(const Json& value);

// `v` rounded to `decimals` digits after the point (as printf's "%.*f"), so
// a log says 1.5 rather than 1.50000000001. Non-finite values pass through.
double RoundDecimals(double v, int decimals);

// `v` rounded to `digits` significant digits (as printf's "%.*g").
// Non-finite values pass through.
double RoundSignificant(double v, int digits);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_UTIL_JSON_H_
