// A tiny bitmap font for captions: printable ASCII (0x20..0x7E) in 8x8 cells.
#ifndef EMBEDSEARCH_CORE_IMAGE_FONT8X8_H_
#define EMBEDSEARCH_CORE_IMAGE_FONT8X8_H_

#include <cstdint>

namespace embedsearch {

// kFont8x8[c - 0x20][row]: 8 rows top to bottom, bit 7 = leftmost pixel.
extern const uint8_t kFont8x8[95][8];

// The glyph rows of `c`; non-printable characters draw as '?'.
inline const uint8_t* Glyph8x8(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return kFont8x8[(u >= 0x20 && u < 0x7F ? u : '?') - 0x20];
}

}  // namespace embedsearch

#endif  // EMBEDSEARCH_CORE_IMAGE_FONT8X8_H_
