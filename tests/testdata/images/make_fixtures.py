#!/usr/bin/python3
"""Writes the small image fixtures of tests/image with a third-party encoder
(Pillow) and, for what Pillow cannot write (16-bit RGB, Adam7 interlace), a
raw chunk writer here, so our decoders are tested on files we did not write.
Pixel patterns are the ones tests/image/image_test.cc recomputes:
  v(x, y) = (x * 31 + y * 17) % 256 on an 8 wide, 6 high image.
Run from this directory: /usr/bin/python3 make_fixtures.py
"""
import struct
import zlib

import numpy as np
from PIL import Image

W, H = 8, 6
y, x = np.mgrid[0:H, 0:W]
v = ((x * 31 + y * 17) % 256).astype(np.uint8)
rgb = np.stack([v, 255 - v, ((x * 40) % 256).astype(np.uint8)], axis=-1)
alpha = ((y * 50) % 256).astype(np.uint8)

Image.fromarray(v, "L").save("gray8.png")
Image.fromarray(rgb.astype(np.uint8), "RGB").save("rgb8.png")
Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA").save("rgba8.png")
Image.fromarray(np.dstack([v, alpha]).astype(np.uint8), "LA").save("graya8.png")
# 16-bit gray: high byte v, low byte noise that stripping must drop.
v16 = (v.astype(np.uint16) * 256 + (x * 7 % 256)).astype(np.uint16)
Image.fromarray(v16, "I;16").save("gray16.png")


def write_png(path, width, height, bit_depth, color_type, rows, interlace=0):
    """rows(x0, y0, dx, dy) -> list of raw scanlines (bytes) of that pass."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                  (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    else:
        passes = [(0, 0, 1, 1)]
    raw = b"".join(b"\0" + r for p in passes for r in rows(*p))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0,
                       interlace)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pass_rows(pixels, x0, y0, dx, dy):
    sub = pixels[y0::dy, x0::dx]
    if sub.shape[0] == 0 or sub.shape[1] == 0:
        return []
    return [row.tobytes() for row in sub]


# 16-bit RGB (high bytes = rgb, low bytes = noise).
rgb16 = (rgb.astype(">u2") * 256 + (x * 7 % 256)[:, :, None]).astype(">u2")
write_png("rgb16.png", W, H, 16, 2, lambda *p: pass_rows(rgb16, *p))
# Palette with a transparent entry 0.
pal_index = ((x + y) % 4).astype(np.uint8)
p = Image.fromarray(pal_index, "P")
p.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 - 4) * 3)
p.save("palette.png", transparency=0)
# 1-bit gray: v >= 128.
Image.fromarray((v >= 128).astype(np.uint8) * 255, "L").convert("1").save("gray1.png")
# Adam7 interlaced 8-bit RGB.
write_png("interlaced.png", W, H, 8, 2,
          lambda *p: pass_rows(rgb.astype(np.uint8), *p), interlace=1)

# JPEG: a smooth 32x24 image so lossy round trips stay close.
Y, X = np.mgrid[0:24, 0:32]
smooth = np.stack([X * 8, Y * 10, (X + Y) * 4], axis=-1).astype(np.uint8)
Image.fromarray(smooth, "RGB").save("smooth.jpg", quality=95)
Image.fromarray(smooth, "RGB").save("progressive.jpg", quality=95, progressive=True)
Image.fromarray(smooth[:, :, 0], "L").save("gray.jpg", quality=95)
Image.fromarray(smooth, "RGB").convert("CMYK").save("cmyk.jpg", quality=95)

# PGM with comments and maxval 15 (values scale to 0..255).
with open("comment.pgm", "wb") as f:
    f.write(b"P5\n# written by make_fixtures.py\n4 # width\n2\n# maxval next\n15\n")
    f.write(bytes([0, 5, 10, 15, 15, 10, 5, 0]))
