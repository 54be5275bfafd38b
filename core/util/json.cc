#include "core/util/json.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_format.h"

namespace embedsearch {

std::string JsonText(const Json& value) {
  return value.dump(/*indent=*/-1, ' ', /*ensure_ascii=*/false,
                    nlohmann::detail::error_handler_t::replace);
}

double RoundDecimals(double v, int decimals) {
  if (!std::isfinite(v)) return v;
  return std::strtod(absl::StrFormat("%.*f", decimals, v).c_str(), nullptr);
}

double RoundSignificant(double v, int digits) {
  if (!std::isfinite(v)) return v;
  return std::strtod(absl::StrFormat("%.*g", digits, v).c_str(), nullptr);
}

}  // namespace embedsearch
