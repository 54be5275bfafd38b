#include "core/image/contact_sheet.h"

#include <filesystem>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/image/font8x8.h"
#include "core/image/image.h"
#include "core/util/file.h"
#include "gtest/gtest.h"

namespace embedsearch {
namespace {

Image Gray(int w, int h, uint8_t v) {
  Image image;
  image.width = w;
  image.height = h;
  image.channels = 1;
  image.pixels.assign(static_cast<size_t>(w) * h, v);
  return image;
}

bool IsColour(const Image& im, int x, int y, int r, int g, int b) {
  return im.at(y, x, 0) == r && im.at(y, x, 1) == g && im.at(y, x, 2) == b;
}

TEST(ContactSheet, SizeFollowsTheLayoutContract) {
  std::vector<std::vector<SheetCell>> rows(3);
  rows[0].resize(5);
  rows[1].resize(2);
  rows[2].resize(4);
  for (auto& row : rows) {
    for (auto& cell : row) cell.image = Gray(28, 28, 128);
  }
  auto sheet = ComposeContactSheet(rows);
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  // width = 5 * (112 + 4) + 4, height = 3 * (112 + 22 + 4) + 4.
  EXPECT_EQ(sheet->width, 584);
  EXPECT_EQ(sheet->height, 418);
  EXPECT_EQ(sheet->channels, 3);
  ContactSheetOptions options;
  options.cell_size = 28;
  options.caption_lines = 1;
  options.padding = 0;
  sheet = ComposeContactSheet(rows, options);
  ASSERT_TRUE(sheet.ok());
  EXPECT_EQ(sheet->width, 5 * 28);
  EXPECT_EQ(sheet->height, 3 * (28 + 12));
}

TEST(ContactSheet, DrawsImagesCaptionsAndTheHighlightFrame) {
  Image white = Gray(28, 28, 255);
  white.pixels[0] = 0;  // Top-left source pixel black: 4x4 block when scaled.
  std::vector<std::vector<SheetCell>> rows = {
      {{white, "query", true}, {Gray(56, 28, 90), "Ankle boot 0.123", false}}};
  auto sheet = ComposeContactSheet(rows);
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  // Cell 0 at (4, 4): 28 -> 112 is a crisp 4x upscale.
  EXPECT_TRUE(IsColour(*sheet, 4, 4, 0, 0, 0));
  EXPECT_TRUE(IsColour(*sheet, 7, 7, 0, 0, 0));
  EXPECT_TRUE(IsColour(*sheet, 8, 8, 255, 255, 255));
  EXPECT_TRUE(IsColour(*sheet, 115, 115, 255, 255, 255));
  // The frame sits in the padding around the highlighted cell.
  EXPECT_TRUE(IsColour(*sheet, 2, 2, 255, 165, 0));
  EXPECT_TRUE(IsColour(*sheet, 116, 60, 255, 165, 0));
  // Cell 1 at x = 120: a 2:1 image letterboxed to 112x56, centred.
  EXPECT_TRUE(IsColour(*sheet, 120 + 56, 4 + 10, 0, 0, 0));
  EXPECT_TRUE(IsColour(*sheet, 120 + 56, 4 + 56, 90, 90, 90));
  // Caption strips (y in [116, 138)) carry text pixels.
  int lit0 = 0, lit1 = 0;
  for (int y = 116; y < 138; ++y) {
    for (int x = 4; x < 116; ++x) lit0 += IsColour(*sheet, x, y, 255, 165, 0);
    for (int x = 120; x < 232; ++x)
      lit1 += IsColour(*sheet, x, y, 225, 225, 225);
  }
  EXPECT_GT(lit0, 20);
  EXPECT_GT(lit1, 60);  // "Ankle boot 0.123" wraps to two lines.
}

TEST(ContactSheet, DrawsColourPicturesInColour) {
  Image photo;
  photo.width = 300;
  photo.height = 150;
  photo.channels = 3;
  for (int i = 0; i < 300 * 150; ++i) {
    const bool left = (i % 300) < 150;
    photo.pixels.insert(photo.pixels.end(), {uint8_t(left ? 210 : 20), 40,
                                             uint8_t(left ? 20 : 230)});
  }
  auto png = EncodePng(photo);
  ASSERT_TRUE(png.ok());
  auto decoded = DecodePng(*png);  // as a gallery's stored picture arrives
  ASSERT_TRUE(decoded.ok());
  auto sheet = ComposeContactSheet({{{*decoded, "red | blue", false}}});
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  // Cell at (4, 4), picture 112x56 centred vertically: rows 32..87.
  EXPECT_TRUE(IsColour(*sheet, 4 + 20, 60, 210, 40, 20));
  EXPECT_TRUE(IsColour(*sheet, 4 + 90, 60, 20, 40, 230));
}

TEST(ContactSheet, IsADecodablePng) {
  auto train = LoadFashionMnist(EMBEDSEARCH_FASHION_MNIST_DIR, "t10k");
  ASSERT_TRUE(train.ok()) << train.status();
  std::vector<std::vector<SheetCell>> rows(3);
  rows[0].push_back({train->GetImage(0), "query: Ankle boot", true});
  const char* captions[] = {"#1 d=0.031 Ankle boot", "#2 d=0.044 Sneaker",
                            "#3 d=0.050 Sandal", "#4 d=0.061 Ankle boot"};
  for (int i = 0; i < 4; ++i) {
    rows[0].push_back({train->GetImage(i + 1), captions[i], false});
  }
  for (int r = 1; r < 3; ++r) {
    for (int i = 0; i < 6; ++i) {
      const size_t idx = static_cast<size_t>(r * 6 + i) * 7;
      rows[r].push_back(
          {train->GetImage(idx),
           train->label_names[train->labels[idx]] + " " + std::to_string(idx),
           false});
    }
  }
  auto sheet = ComposeContactSheet(rows);
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  auto png = EncodePng(*sheet);
  ASSERT_TRUE(png.ok());
  auto back = DecodePng(*png);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->width, 6 * 116 + 4);
  EXPECT_EQ(back->height, 3 * 138 + 4);
  EXPECT_EQ(back->pixels, sheet->pixels);
  // Kept for people to look at: build dir/Testing/contact_sheet_test.png.
  const std::string dir = std::string(EMBEDSEARCH_BINARY_DIR) + "/Testing";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomically(dir + "/contact_sheet_test.png", *png).ok());
}

TEST(ContactSheet, RejectsBadInput) {
  EXPECT_EQ(ComposeContactSheet({}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ComposeContactSheet({{}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  Image broken = Gray(4, 4, 0);
  broken.pixels.resize(3);
  EXPECT_EQ(ComposeContactSheet({{{broken, "", false}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ContactSheetOptions options;
  options.cell_size = 2;
  EXPECT_EQ(ComposeContactSheet({{{Gray(4, 4, 0), "", false}}}, options)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // An empty cell image is allowed (a missing picture).
  EXPECT_TRUE(ComposeContactSheet({{{Image{}, "missing", false}}}).ok());
}

TEST(Font8x8, EveryPrintableGlyphButSpaceHasPixels) {
  for (int c = 0x21; c < 0x7F; ++c) {
    int bits = 0;
    for (int row = 0; row < 8; ++row)
      bits += __builtin_popcount(Glyph8x8(c)[row]);
    EXPECT_GT(bits, 0) << "glyph '" << static_cast<char>(c) << "'";
  }
  for (int row = 0; row < 8; ++row) EXPECT_EQ(Glyph8x8(' ')[row], 0);
  EXPECT_EQ(Glyph8x8('\x01'), Glyph8x8('?'));
}

}  // namespace
}  // namespace embedsearch
