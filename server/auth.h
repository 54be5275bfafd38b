// Bearer-token check for the mutating RPCs (AddImages, RemoveImages, Reload).
#ifndef EMBEDSEARCH_SERVER_AUTH_H_
#define EMBEDSEARCH_SERVER_AUTH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace embedsearch {

// Compares in time that depends only on the lengths, never on where the
// first difference is, so the token cannot be guessed byte by byte.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// `authorization` is the value of the "authorization" metadata entry
// (nullptr when absent). OK when `token` is empty (auth disabled) or the
// value is exactly "Bearer <token>"; UNAUTHENTICATED otherwise, with a
// message that says what to send (never the expected token).
absl::Status CheckBearerToken(const std::string& token,
                              const absl::string_view* authorization);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_SERVER_AUTH_H_
