// Colour end to end: a format-1 (gray, pre-colour) bundle still fits its
// pictures to the very inputs its trainer used; AddImages keeps the user's
// picture, bounded; and a colour bundle trained by the trainer from an image
// folder serves colour queries over gRPC and returns colour pictures.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/data/preprocess.h"
#include "core/image/image.h"
#include "core/index/bundle.h"
#include "core/util/file.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/service.h"
#include "tests/server/test_bundle.h"
#include "trainer/trainer.h"

namespace embedsearch {
namespace {

namespace fs = std::filesystem;

const std::string kFormat1Dir =
    std::string(EMBEDSEARCH_SOURCE_DIR) + "/tests/testdata/format1";

// A writable copy of the committed format-1 bundle (the server may rebuild
// its index and AddImages writes the catalog).
std::string CopyFormat1Bundle(const std::string& name) {
  const std::string dir = testing::MakeTempDir(name) + "/bundle";
  fs::copy(kFormat1Dir + "/format1_bundle", dir, fs::copy_options::recursive);
  return dir;
}

Image DecodeFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<Image> image = DecodeImage(bytes.ok() ? *bytes : "");
  EXPECT_TRUE(image.ok()) << path << ": " << image.status();
  return image.ok() ? *image : Image();
}

// Largest difference between the colour channels of any pixel.
int ColourSpread(const Image& image) {
  if (image.channels < 3) return 0;
  int spread = 0;
  for (size_t i = 0; i + 2 < image.pixels.size(); i += image.channels) {
    const uint8_t* p = &image.pixels[i];
    spread = std::max(
        spread, std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}));
  }
  return spread;
}

// Written by the trainer of commit 937d03d (make_format1_bundle.sh) from
// gray, RGB, RGBA, PNG and JPEG pictures of several sizes. Its catalog
// holds the 28x28 gray images that trainer fed the encoder.
TEST(Format1Bundle, PicturesFitToTheInputsItsTrainerUsedAndFindThemselves) {
  absl::StatusOr<std::unique_ptr<Bundle>> bundle =
      Bundle::Load(CopyFormat1Bundle("format1-inputs"));
  ASSERT_TRUE(bundle.ok()) << bundle.status();  // model_version verifies
  const EncoderConfig& config = (*bundle)->encoder().config();
  EXPECT_EQ(config.input_channels, 1);
  EXPECT_EQ(config.preprocessing.resize, ResizePolicy::kStretch);
  EXPECT_EQ(config.preprocessing.background, Rgb{});
  ASSERT_EQ(config.preprocessing.mean.size(), 1u);
  EXPECT_NE(config.preprocessing.mean[0], Preprocessing().mean[0]);  // measured

  SearchService service;
  ASSERT_TRUE(service.LoadBundle((*bundle)->dir()).ok());
  const Gallery& gallery = (*bundle)->gallery();
  ASSERT_EQ(gallery.size(), 12);
  for (int64_t id = 1; id <= gallery.size(); ++id) {
    absl::StatusOr<CatalogItem> item = gallery.Get(id);
    ASSERT_TRUE(item.ok()) << item.status();
    const std::string path = kFormat1Dir + "/" + item->source;
    absl::StatusOr<Image> fitted =
        FitImage(DecodeFile(path), InputSpecOf(config));
    ASSERT_TRUE(fitted.ok()) << fitted.status();
    EXPECT_EQ(fitted->pixels, DecodeImage(item->image_png)->pixels) << path;

    v1::SearchRequest request;
    request.set_image(*ReadFile(path));
    request.set_k(1);
    absl::StatusOr<v1::SearchResponse> response = service.Search(request);
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->hits_size(), 1);
    EXPECT_EQ(response->hits(0).id(), id) << path;
    EXPECT_LT(response->hits(0).distance(), 1e-5) << path;
  }
}

TEST(AddImages, StoresTheUsersPictureInColourBoundedTo256) {
  ServiceOptions options;
  SearchService service(options);
  ASSERT_TRUE(service.LoadBundle(CopyFormat1Bundle("add-bounded")).ok());
  Image photo;  // 600x400, red left half, blue right half
  photo.width = 600;
  photo.height = 400;
  photo.channels = 3;
  for (int i = 0; i < 600 * 400; ++i) {
    const bool left = i % 600 < 300;
    photo.pixels.insert(photo.pixels.end(), {uint8_t(left ? 220 : 20), 30,
                                             uint8_t(left ? 20 : 220)});
  }
  Image small = photo;
  small = BoundImage(photo, 90);  // 90x60: stored as sent
  v1::AddImagesRequest request;
  v1::NewImage* big_in = request.add_images();
  big_in->set_image(*EncodeJpeg(photo));  // colour into a gray model: converted
  big_in->set_label_name("photo");
  const std::string small_png = *EncodePng(small);
  v1::NewImage* small_in = request.add_images();
  small_in->set_image(small_png);
  small_in->set_label_name("photo");
  absl::StatusOr<v1::AddImagesResponse> added = service.AddImages(request);
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_EQ(added->ids_size(), 2);

  v1::GetImageRequest get;
  get.set_id(added->ids(0));
  absl::StatusOr<v1::GetImageResponse> big = service.GetImage(get);
  ASSERT_TRUE(big.ok()) << big.status();
  absl::StatusOr<Image> big_out = DecodeImage(big->image_png());
  ASSERT_TRUE(big_out.ok());
  EXPECT_EQ(DetectFormat(big->image_png()), ImageFormat::kPng);
  EXPECT_EQ(big_out->width, 256);
  EXPECT_EQ(big_out->height, 171);
  EXPECT_EQ(big_out->channels, 3);
  EXPECT_GT(ColourSpread(*big_out), 150);
  get.set_id(added->ids(1));
  EXPECT_EQ(service.GetImage(get)->image_png(), small_png);

  ServiceOptions unbounded;
  unbounded.max_picture_side = 0;
  SearchService full(unbounded);
  ASSERT_TRUE(full.LoadBundle(CopyFormat1Bundle("add-full")).ok());
  request.mutable_images()->DeleteSubrange(1, 1);
  added = full.AddImages(request);
  ASSERT_TRUE(added.ok()) << added.status();
  get.set_id(added->ids(0));
  EXPECT_EQ(DecodeImage(full.GetImage(get)->image_png())->width, 600);
}

// Classes that differ only in colour: the same random blobs on white, drawn
// in a class colour with noise. Sizes and formats vary.
struct ColourClass {
  const char* name;
  uint8_t r, g, b;
};
constexpr ColourClass kClasses[] = {
    {"red", 210, 40, 40}, {"green", 40, 170, 60}, {"blue", 40, 60, 210}};

Image Blob(const ColourClass& c, int seed) {
  std::mt19937 rng(seed);
  const int w = 40 + static_cast<int>(rng() % 60),
            h = 40 + static_cast<int>(rng() % 60);
  Image image;
  image.width = w;
  image.height = h;
  image.channels = 3;
  image.pixels.assign(static_cast<size_t>(w) * h * 3, 255);
  const int cx = w / 2 + static_cast<int>(rng() % 11) - 5;
  const int cy = h / 2 + static_cast<int>(rng() % 11) - 5;
  const int rx = 8 + static_cast<int>(rng() % 12),
            ry = 8 + static_cast<int>(rng() % 12);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const double dx = double(x - cx) / rx, dy = double(y - cy) / ry;
      if (dx * dx + dy * dy > 1) continue;
      const int noise = static_cast<int>(rng() % 31) - 15;
      uint8_t* p = &image.pixels[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(std::clamp(c.r + noise, 0, 255));
      p[1] = static_cast<uint8_t>(std::clamp(c.g + noise, 0, 255));
      p[2] = static_cast<uint8_t>(std::clamp(c.b + noise, 0, 255));
    }
  }
  return image;
}

std::string MakeColourFolder(const std::string& root) {
  for (const ColourClass& c : kClasses) {
    fs::create_directories(root + "/" + c.name);
    for (int i = 0; i < 12; ++i) {
      const Image blob = Blob(c, 100 * i + c.r);
      const std::string base = absl::StrCat(root, "/", c.name, "/", i);
      EXPECT_TRUE(
          (i % 2 == 0
               ? WriteFileAtomically(base + ".png", *EncodePng(blob))
               : WriteFileAtomically(base + ".jpg", *EncodeJpeg(blob, 95)))
              .ok());
    }
  }
  return root;
}

TEST(ColourEndToEnd, TrainedColourBundleServesColourQueriesOverGrpc) {
  const std::string root = testing::MakeTempDir("colour-e2e");
  TrainerOptions o;
  o.data = MakeColourFolder(root + "/pictures");
  o.work_dir = root + "/work";
  o.out = root + "/bundle";
  o.conv_channels = {8};
  o.hidden = 16;
  o.dim = 8;
  o.classes_per_batch = 3;
  o.images_per_class = 4;
  o.epochs = 3;
  o.warmup_steps = 2;
  o.threads = 1;
  o.eval_every = 0;
  o.index_spec = "Flat";
  o.quiet = true;
  absl::StatusOr<TrainResult> trained = Train(o);
  ASSERT_TRUE(trained.ok()) << trained.status();

  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.bundle_path = o.out;
  options.log_format = LogFormat::kNone;
  absl::StatusOr<std::unique_ptr<EmbedSearchServer>> server =
      EmbedSearchServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::unique_ptr<v1::ImageSearch::Stub> stub =
      testing::MakeStub((*server)->port());

  v1::GetInfoResponse info;
  ASSERT_TRUE(stub->GetInfo(testing::MakeContext().get(), {}, &info).ok());
  EXPECT_EQ(info.gallery_size(), 36u);
  EXPECT_EQ(info.input_channels(), 3u);
  absl::StatusOr<std::unique_ptr<Bundle>> bundle = Bundle::Load(o.out);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  const EncoderConfig& config = (*bundle)->encoder().config();
  EXPECT_EQ(config.input_channels, 3);
  EXPECT_EQ(config.preprocessing.mean.size(), 3u);
  EXPECT_EQ(config.preprocessing.resize, ResizePolicy::kShorterSideCentreCrop);
  EXPECT_EQ(config.preprocessing.background, (Rgb{255, 255, 255}));
  EXPECT_EQ((*bundle)->manifest().input_channels(), 3u);

  int correct = 0;
  for (const ColourClass& c : kClasses) {
    for (int q = 0; q < 3; ++q) {  // new pictures, not in the gallery
      v1::SearchRequest request;
      request.set_image(*EncodePng(Blob(c, 7777 + 13 * q)));
      request.set_k(3);
      request.set_include_images(true);
      v1::SearchResponse response;
      grpc::Status status =
          stub->Search(testing::MakeContext().get(), request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      ASSERT_EQ(response.hits_size(), 3);
      correct += response.hits(0).label_name() == c.name;
      const v1::Hit& hit = response.hits(0);
      absl::StatusOr<Image> shown = DecodeImage(hit.image_png());
      ASSERT_TRUE(shown.ok());
      EXPECT_EQ(shown->channels, 3);
      EXPECT_GT(ColourSpread(*shown), 100)
          << "hit " << hit.id() << " is not in colour";

      v1::GetImageRequest get;
      get.set_id(hit.id());
      v1::GetImageResponse image;
      ASSERT_TRUE(
          stub->GetImage(testing::MakeContext().get(), get, &image).ok());
      EXPECT_EQ(image.image_png(), hit.image_png());
      // The user's own file (up to JPEG loss), not a 28x28 input.
      const Image file = DecodeFile(hit.source());
      EXPECT_EQ(shown->width, file.width);
      EXPECT_EQ(shown->height, file.height);
    }
  }
  EXPECT_GE(correct, 8) << "of 9 colour queries, top hit of the query's colour";

  // A gray query to the RGB model is replicated, not refused.
  Image gray = ToGrayscale(Blob(kClasses[0], 5));
  v1::SearchRequest request;
  request.set_image(*EncodePng(gray));
  request.set_k(1);
  v1::SearchResponse response;
  EXPECT_TRUE(
      stub->Search(testing::MakeContext().get(), request, &response).ok());
  EXPECT_EQ(response.hits_size(), 1);

  // A 1x5000 strip (within the decode limits) is fitted, not refused.
  Image strip;
  strip.width = 1;
  strip.height = 5000;
  strip.channels = 3;
  strip.pixels.assign(5000 * 3, 200);
  request.set_image(*EncodePng(strip));
  grpc::Status strip_status =
      stub->Search(testing::MakeContext().get(), request, &response);
  EXPECT_TRUE(strip_status.ok()) << strip_status.error_message();
  EXPECT_EQ(response.hits_size(), 1);
}

}  // namespace
}  // namespace embedsearch
