// Contact sheets: a grid of image cells, each with a caption strip below.
#include "core/image/contact_sheet.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/image/codec_internal.h"
#include "core/image/font8x8.h"

namespace embedsearch {
namespace {

constexpr Rgb kBackground = {32, 33, 38};  // Sheet and caption strips.
constexpr Rgb kImageArea = {0, 0, 0};      // Matches the datasets' black.
constexpr Rgb kText = {225, 225, 225};
constexpr Rgb kHighlight = {255, 165, 0};  // Orange frame around the query.
constexpr int kGlyph = 8;
constexpr int kLineHeight = 10;  // 8 px glyph + 2 px leading.
constexpr int64_t kMaxSheetPixels = 100'000'000;

void Fill(Image* sheet, int x0, int y0, int w, int h, Rgb c) {
  const int x1 = std::min(sheet->width, x0 + w);
  const int y1 = std::min(sheet->height, y0 + h);
  x0 = std::max(0, x0);
  y0 = std::max(0, y0);
  for (int y = y0; y < y1; ++y) {
    uint8_t* p =
        sheet->pixels.data() + (static_cast<size_t>(y) * sheet->width + x0) * 3;
    for (int x = x0; x < x1; ++x, p += 3) {
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
  }
}

void DrawText(Image* sheet, int x0, int y0, const std::string& text, Rgb c) {
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* glyph = Glyph8x8(text[i]);
    for (int row = 0; row < kGlyph; ++row) {
      for (int col = 0; col < kGlyph; ++col) {
        if ((glyph[row] & (0x80 >> col)) != 0) {
          Fill(sheet, x0 + static_cast<int>(i) * kGlyph + col, y0 + row, 1, 1,
               c);
        }
      }
    }
  }
}

// Greedy word wrap into at most `max_lines` lines of `width` characters;
// explicit '\n' starts a new line, overlong words are cut, and text that
// does not fit ends in "..".
std::vector<std::string> WrapCaption(const std::string& caption, int width,
                                     int max_lines) {
  std::vector<std::string> lines;
  if (width <= 0 || max_lines <= 0) return lines;
  bool overflow = false;
  for (absl::string_view paragraph : absl::StrSplit(caption, '\n')) {
    std::string line;
    for (absl::string_view word :
         absl::StrSplit(paragraph, ' ', absl::SkipEmpty())) {
      std::string w(word);
      while (!w.empty()) {
        const size_t need =
            line.empty() ? w.size() : line.size() + 1 + w.size();
        if (need <= static_cast<size_t>(width)) {
          line += line.empty() ? w : " " + w;
          w.clear();
        } else if (!line.empty()) {
          lines.push_back(line);
          line.clear();
        } else {  // A word longer than a line: cut it.
          lines.push_back(w.substr(0, width));
          w = w.substr(width);
        }
      }
    }
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (static_cast<int>(lines.size()) > max_lines) {
    overflow = true;
    lines.resize(max_lines);
  }
  if (overflow) {
    std::string& last = lines.back();
    if (static_cast<int>(last.size()) + 2 > width) {
      last.resize(std::max(0, width - 2));
    }
    last += "..";
    if (static_cast<int>(last.size()) > width) last.resize(width);
  }
  return lines;
}

// Fits `image` into a size x size square keeping its aspect ratio. Growing
// uses nearest neighbour so small images (28x28) stay crisp; shrinking
// averages areas.
Image FitToCell(const Image& image, int size) {
  Image rgb = ToRgb(image);
  const double scale = std::min(static_cast<double>(size) / rgb.width,
                                static_cast<double>(size) / rgb.height);
  const int w = std::clamp(static_cast<int>(rgb.width * scale + 0.5), 1, size);
  const int h = std::clamp(static_cast<int>(rgb.height * scale + 0.5), 1, size);
  if (scale < 1.0) return ResizeArea(rgb, w, h);
  Image out;
  out.width = w;
  out.height = h;
  out.channels = 3;
  out.pixels.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    const int sy =
        std::min(rgb.height - 1, static_cast<int>(y * rgb.height / h));
    for (int x = 0; x < w; ++x) {
      const int sx =
          std::min(rgb.width - 1, static_cast<int>(x * rgb.width / w));
      for (int c = 0; c < 3; ++c) {
        out.pixels[(static_cast<size_t>(y) * w + x) * 3 + c] =
            rgb.at(sy, sx, c);
      }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Image> ComposeContactSheet(
    const std::vector<std::vector<SheetCell>>& rows,
    const ContactSheetOptions& options) {
  if (options.cell_size < kGlyph || options.cell_size > 4096 ||
      options.caption_lines < 0 || options.caption_lines > 16 ||
      options.padding < 0 || options.padding > 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "contact sheet: bad options (cell_size ", options.cell_size,
        " not in [8, 4096], caption_lines ", options.caption_lines,
        " not in [0, 16] or padding ", options.padding, " not in [0, 256])"));
  }
  size_t max_row = 0;
  for (const auto& row : rows) max_row = std::max(max_row, row.size());
  if (rows.empty() || max_row == 0) {
    return absl::InvalidArgumentError("contact sheet: no cells");
  }
  const int caption_height = options.caption_lines * kLineHeight + 2;
  const int64_t cell_w = options.cell_size + options.padding;
  const int64_t cell_h = options.cell_size + caption_height + options.padding;
  const int64_t width =
      static_cast<int64_t>(max_row) * cell_w + options.padding;
  const int64_t height =
      static_cast<int64_t>(rows.size()) * cell_h + options.padding;
  if (width * height > kMaxSheetPixels) {
    return absl::InvalidArgumentError(absl::StrCat("contact sheet: ", width,
                                                   "x", height, " exceeds ",
                                                   kMaxSheetPixels, " pixels"));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const Image& image = rows[r][c].image;
      if (image.width == 0 && image.height == 0) continue;  // Empty cell.
      absl::Status valid = image_internal::ValidateImage(
          absl::StrCat("contact sheet cell (", r, ", ", c, ")"), image);
      if (!valid.ok()) return valid;
    }
  }

  Image sheet;
  sheet.width = static_cast<int>(width);
  sheet.height = static_cast<int>(height);
  sheet.channels = 3;
  sheet.pixels.resize(static_cast<size_t>(width) * height * 3);
  Fill(&sheet, 0, 0, sheet.width, sheet.height, kBackground);
  const int size = options.cell_size;
  const int chars = size / kGlyph;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      const SheetCell& cell = rows[r][c];
      const int x0 = options.padding + static_cast<int>(c * cell_w);
      const int y0 = options.padding + static_cast<int>(r * cell_h);
      if (cell.highlight) {
        // A frame in the padding around image and caption (inside the cell
        // when there is no padding).
        const int t = options.padding > 0 ? std::min(options.padding, 3) : 0;
        const int inner = options.padding > 0 ? 0 : 2;
        const int fx = x0 - t, fy = y0 - t;
        const int fw = size + 2 * t, fh = size + caption_height + 2 * t;
        const int th = t > 0 ? t : inner;
        Fill(&sheet, fx, fy, fw, th, kHighlight);
        Fill(&sheet, fx, fy + fh - th, fw, th, kHighlight);
        Fill(&sheet, fx, fy, th, fh, kHighlight);
        Fill(&sheet, fx + fw - th, fy, th, fh, kHighlight);
      }
      const int inset = cell.highlight && options.padding == 0 ? 2 : 0;
      Fill(&sheet, x0 + inset, y0 + inset, size - 2 * inset, size - inset,
           kImageArea);
      if (cell.image.width > 0 && cell.image.height > 0) {
        const Image fitted = FitToCell(cell.image, size - 2 * inset);
        const int ox = x0 + inset + (size - 2 * inset - fitted.width) / 2;
        const int oy = y0 + inset + (size - 2 * inset - fitted.height) / 2;
        for (int y = 0; y < fitted.height; ++y) {
          std::copy_n(
              fitted.pixels.data() + static_cast<size_t>(y) * fitted.width * 3,
              fitted.width * 3,
              sheet.pixels.data() +
                  ((static_cast<size_t>(oy + y)) * sheet.width + ox) * 3);
        }
      }
      const auto lines =
          WrapCaption(cell.caption, chars, options.caption_lines);
      for (size_t l = 0; l < lines.size(); ++l) {
        const int text_w = static_cast<int>(lines[l].size()) * kGlyph;
        const int tx = x0 + (size - text_w) / 2;
        const int ty = y0 + size + 2 + static_cast<int>(l) * kLineHeight;
        DrawText(&sheet, tx, ty, lines[l], cell.highlight ? kHighlight : kText);
      }
    }
  }
  return sheet;
}

}  // namespace embedsearch
