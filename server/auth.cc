#include "server/auth.h"

#include <algorithm>
#include <cstddef>

#include "absl/strings/match.h"

namespace embedsearch {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Walk the longer length so that the loop count leaks only lengths.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0;
    const unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  // volatile keeps the compiler from turning the loop into an early exit.
  volatile unsigned char result = diff;
  return result == 0;
}

absl::Status CheckBearerToken(const std::string& token,
                              const absl::string_view* authorization) {
  if (token.empty()) return absl::OkStatus();
  if (authorization == nullptr) {
    return absl::UnauthenticatedError(
        "this RPC changes the server and needs a token: send metadata "
        "\"authorization: Bearer <token>\"");
  }
  constexpr absl::string_view kPrefix = "Bearer ";
  if (!absl::StartsWithIgnoreCase(*authorization, kPrefix)) {
    return absl::UnauthenticatedError(
        "authorization metadata must be \"Bearer <token>\"");
  }
  if (!ConstantTimeEquals(authorization->substr(kPrefix.size()), token)) {
    return absl::UnauthenticatedError("wrong bearer token");
  }
  return absl::OkStatus();
}

}  // namespace embedsearch
