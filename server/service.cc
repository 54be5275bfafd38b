#include "server/service.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/preprocess.h"
#include "core/util/status_macros.h"
#include "server/bundle_path.h"

namespace embedsearch {
namespace {

// Most queries one search worker takes at once (it encodes their images in
// one call, so fc1 is a matrix product instead of one matrix-vector product
// per query). A bound on one batch's latency and scratch memory; with two
// workers sharing the queue it binds only above 64 queued queries.
constexpr size_t kMaxSearchBatch = 32;

// Prefixes a status message with what it is about, keeping the code.
absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

absl::Status CheckFinite(const float* v, size_t n, absl::string_view what) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, "[", i, "] is ", std::isnan(v[i]) ? "NaN" : "infinite",
          "; every value must be a finite float"));
    }
  }
  return absl::OkStatus();
}

void FillHit(const GalleryHit& from, v1::Hit* to) {
  to->set_id(from.id);
  to->set_distance(from.distance);
  to->set_label(from.label);
  to->set_label_name(from.label_name);
  to->set_source(from.source);
  if (!from.image_png.empty()) to->set_image_png(from.image_png);
}

// The user's picture as the gallery keeps it: PNG bytes as sent when they
// fit `max_side`, else re-encoded (and shrunk when larger).
absl::StatusOr<std::string> PictureToStore(const std::string& bytes,
                                           const Image& decoded, int max_side) {
  const bool fits =
      max_side <= 0 || std::max(decoded.width, decoded.height) <= max_side;
  if (fits && DetectFormat(bytes) == ImageFormat::kPng) {
    return bytes;  // Already PNG and known to decode.
  }
  return EncodePng(BoundImage(decoded, max_side));
}

}  // namespace

SearchService::SearchService(ServiceOptions options)
    : options_(std::move(options)),
      started_(absl::Now()),
      slots_(options_.compute_threads),
      search_queue_(slots_.slots(), kMaxSearchBatch,
                    [this](std::vector<PendingSearch>& batch) { RunSearchBatch(batch); }) {
  metrics_->SetGallerySizeSource([this]() -> int64_t {
    std::shared_ptr<Bundle> b = bundle();
    return b == nullptr ? 0 : b->gallery().size();
  });
}

absl::Status SearchService::LoadBundle(const std::string& dir) {
  std::unique_lock load_lock(load_mu_);
  BundleLoadOptions load_options;
  load_options.catalog = options_.catalog;
  load_options.replication.poll_interval = options_.catalog_poll_interval;
  absl::StatusOr<std::unique_ptr<Bundle>> loaded =
      Bundle::Load(dir, load_options);
  metrics_->RecordBundleLoad(loaded.status());
  if (!loaded.ok()) {
    return Annotate(loaded.status(),
                    absl::StrCat("cannot load bundle \"", dir, "\""));
  }
  return Swap(*std::move(loaded));
}

absl::Status SearchService::Swap(std::unique_ptr<Bundle> loaded) {
  std::shared_ptr<Bundle> fresh(std::move(loaded));
  std::shared_ptr<Bundle> old;
  std::function<void(const Bundle&)> listener;
  {
    std::unique_lock lock(mu_);
    old = std::exchange(bundle_, fresh);
    listener = listener_;
  }
  metrics_->SetModel(fresh->model_version(), fresh->gallery().index_spec(),
                     fresh->gallery().metric(), fresh->encoder().dim());
  if (listener) listener(*fresh);
  // `old` is released here, or later by the last request still using it.
  return absl::OkStatus();
}

std::shared_ptr<Bundle> SearchService::bundle() const {
  std::unique_lock lock(mu_);
  return bundle_;
}

void SearchService::SetBundleListener(
    std::function<void(const Bundle&)> listener) {
  std::shared_ptr<Bundle> current;
  {
    std::unique_lock lock(mu_);
    listener_ = listener;
    current = bundle_;
  }
  if (current && listener) listener(*current);
}

absl::StatusOr<std::shared_ptr<Bundle>> SearchService::RequireBundle() const {
  std::shared_ptr<Bundle> b = bundle();
  if (b == nullptr) {
    return absl::UnavailableError(
        "no bundle is loaded yet: start the server with --bundle or call "
        "Reload with a bundle path");
  }
  return b;
}

absl::Status SearchService::PrepareImage(const Bundle& bundle,
                                         const std::string& bytes,
                                         absl::string_view what,
                                         std::vector<float>* out,
                                         Image* decoded) const {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is empty: send PNG, JPEG or binary PGM bytes"));
  }
  absl::StatusOr<Image> image = DecodeImage(bytes, options_.decode_limits);
  if (!image.ok()) {
    // Decoders report InvalidArgument; keep any other code they chose.
    return Annotate(image.status(),
                    absl::StrCat(what, " (", bytes.size(),
                                 " bytes) could not be decoded as PNG, JPEG "
                                 "or binary PGM"));
  }
  const InputSpec spec = InputSpecOf(bundle.encoder().config());
  if (absl::Status s = ValidateInputSpec(spec); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this model's input cannot be made from an image: ", s.message()));
  }
  const size_t offset = out->size();
  out->resize(offset + static_cast<size_t>(bundle.encoder().input_size()));
  if (absl::Status s = PreprocessImage(*image, spec, out->data() + offset);
      !s.ok()) {
    out->resize(offset);
    return Annotate(s, what);
  }
  if (decoded != nullptr) *decoded = *std::move(image);
  return absl::OkStatus();
}

struct SearchService::PreparedSearch {
  GallerySearchOptions search;
  std::vector<float> query;  // dim floats (image queries: after encoding)
  bool from_image = false;
};

absl::StatusOr<SearchService::PreparedSearch> SearchService::PrepareSearch(
    const Bundle& bundle, const v1::SearchRequest& request) const {
  if (request.k() == 0 || request.k() > static_cast<uint32_t>(options_.max_k)) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be between 1 and ", options_.max_k, "; got ",
                     request.k()));
  }
  if (request.nprobe() > static_cast<uint32_t>(options_.max_nprobe)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nprobe must be at most ", options_.max_nprobe, "; got ",
        request.nprobe()));
  }
  if (request.ef_search() > static_cast<uint32_t>(options_.max_ef_search)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ef_search must be at most ", options_.max_ef_search, "; got ",
        request.ef_search()));
  }
  if (request.query_case() == v1::SearchRequest::QUERY_NOT_SET) {
    return absl::InvalidArgumentError(
        "empty query: set one of image, embedding or id");
  }
  const Gallery& gallery = bundle.gallery();
  const int dim = bundle.encoder().dim();

  PreparedSearch prepared;
  GallerySearchOptions& search = prepared.search;
  search.k = static_cast<int>(request.k());
  search.nprobe = static_cast<int>(request.nprobe());
  search.ef_search = static_cast<int>(request.ef_search());
  search.include_images = request.include_images();
  if (request.label_filter_size() > 0) {
    const std::vector<std::string> known = gallery.label_names();
    for (int i = 0; i < request.label_filter_size(); ++i) {
      const std::string& name = request.label_filter(i);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "label_filter[", i, "] \"", name,
            "\" is not a label of this gallery; known labels: ",
            absl::StrJoin(known, ", ")));
      }
      search.label_filter.push_back(name);
    }
  }

  std::vector<float>& query = prepared.query;
  query.resize(dim);
  switch (request.query_case()) {
    case v1::SearchRequest::kEmbedding: {
      const auto& values = request.embedding().values();
      if (values.size() != dim) {
        return absl::InvalidArgumentError(absl::StrCat(
            "embedding has ", values.size(), " values; this model (",
            bundle.model_version(), ") needs exactly ", dim));
      }
      RETURN_IF_ERROR(CheckFinite(values.data(), values.size(), "embedding"));
      std::copy(values.begin(), values.end(), query.begin());
      break;
    }
    case v1::SearchRequest::kId: {
      absl::StatusOr<CatalogItem> item = gallery.Get(request.id());
      if (!item.ok()) {
        if (absl::IsNotFound(item.status())) {
          return absl::NotFoundError(absl::StrCat(
              "no image with id ", request.id(), " in the gallery"));
        }
        return item.status();
      }
      if (item->embedding.size() != static_cast<size_t>(dim)) {
        return absl::InternalError(absl::StrCat(
            "stored embedding of id ", request.id(), " has ",
            item->embedding.size(), " values, model dim is ", dim));
      }
      query = std::move(item->embedding);
      break;
    }
    case v1::SearchRequest::kImage:
      prepared.from_image = true;
      break;
    case v1::SearchRequest::QUERY_NOT_SET:
      break;
  }

  return prepared;
}

absl::StatusOr<v1::SearchResponse> SearchService::AnswerSearch(
    const Bundle& bundle, const PreparedSearch& prepared,
    SearchStageTimes& times) const {
  GallerySearchOptions options = prepared.search;
  GallerySearchOptions::Times gallery_times;
  options.times = &gallery_times;
  ASSIGN_OR_RETURN(auto results,
                   bundle.gallery().Search(prepared.query.data(), 1, options));
  times[SearchStage::kIndexSearch] = gallery_times.index;
  times[SearchStage::kCatalogRead] = gallery_times.catalog;
  const absl::Time start = absl::Now();
  v1::SearchResponse response;
  response.set_model_version(bundle.model_version());
  if (!results.empty()) {
    for (const GalleryHit& hit : results[0]) FillHit(hit, response.add_hits());
  }
  times[SearchStage::kResponse] = absl::Now() - start;
  return response;
}

void SearchService::RunSearchBatch(std::vector<PendingSearch>& batch,
                                   std::optional<ComputeSlots::Lease> lease) {
  const size_t n = batch.size();
  std::vector<absl::StatusOr<v1::SearchResponse>> results(
      n, absl::InternalError("search was not run"));
  std::vector<SearchStageTimes> times(n);
  const absl::Time taken = absl::Now();
  for (size_t i = 0; i < n; ++i) {
    times[i][SearchStage::kQueueWait] = taken - batch[i].submitted;
  }
  metrics_->RecordSearchBatch(n);
  ComputeSearchBatch(batch, std::move(lease), results, times);
  // The slot is free before the replies go out. The response stage ends
  // when the transport has the answer.
  for (size_t i = 0; i < n; ++i) {
    const absl::Time start = absl::Now();
    batch[i].done(std::move(results[i]));
    auto& response = times[i][SearchStage::kResponse];
    if (response.has_value()) *response += absl::Now() - start;
    metrics_->RecordSearchStages(times[i]);
  }
}

void SearchService::ComputeSearchBatch(
    std::vector<PendingSearch>& batch, std::optional<ComputeSlots::Lease> lease,
    std::vector<absl::StatusOr<v1::SearchResponse>>& results,
    std::vector<SearchStageTimes>& times) {
  absl::StatusOr<std::shared_ptr<Bundle>> bundle = RequireBundle();
  if (!bundle.ok()) {
    for (auto& result : results) result = bundle.status();
    return;
  }
  if (!lease.has_value()) {
    // Never gives up (no stop): each query checks its own stop below.
    absl::StatusOr<ComputeSlots::Lease> acquired = slots_.Acquire({});
    if (!acquired.ok()) {
      for (auto& result : results) result = acquired.status();
      return;
    }
    lease.emplace(*std::move(acquired));
  }
  const Bundle& b = **bundle;
  const size_t n = batch.size();
  std::vector<absl::StatusOr<PreparedSearch>> prepared;
  prepared.reserve(n);
  std::vector<float> input;       // the image queries' model input
  std::vector<size_t> image_of;   // batch index of each image in `input`
  for (size_t i = 0; i < n; ++i) {
    prepared.push_back(PrepareSearch(b, *batch[i].request));
    if (!prepared[i].ok() || !prepared[i]->from_image) continue;
    absl::Status ready = CheckStop(batch[i].stop, "decoding the query image");
    if (ready.ok()) {
      const absl::Time start = absl::Now();
      ready = PrepareImage(b, batch[i].request->image(), "query image", &input, nullptr);
      times[i][SearchStage::kDecode] = absl::Now() - start;
    }
    if (!ready.ok()) {
      prepared[i] = ready;
      continue;
    }
    image_of.push_back(i);
  }
  EncodeImageQueries(b, input, image_of, prepared, times);
  for (size_t i = 0; i < n; ++i) {
    if (!prepared[i].ok()) {
      results[i] = prepared[i].status();
      continue;
    }
    absl::Status go = CheckStop(batch[i].stop, "searching the index");
    results[i] = go.ok() ? AnswerSearch(b, *prepared[i], times[i]) : go;
  }
}

void SearchService::EncodeImageQueries(
    const Bundle& b, const std::vector<float>& input,
    const std::vector<size_t>& image_of,
    std::vector<absl::StatusOr<PreparedSearch>>& prepared,
    std::vector<SearchStageTimes>& times) {
  if (image_of.empty()) return;
  const int64_t images = static_cast<int64_t>(image_of.size());
  int64_t largest = largest_search_batch_.load();
  while (images > largest &&
         !largest_search_batch_.compare_exchange_weak(largest, images)) {
  }
  const int dim = b.encoder().dim();
  std::vector<float> embeddings(image_of.size() * static_cast<size_t>(dim));
  const absl::Time start = absl::Now();
  b.encoder().Encode(input.data(), static_cast<int>(image_of.size()),
                     embeddings.data(), /*threads=*/1);
  const absl::Duration encoded = absl::Now() - start;
  for (size_t j = 0; j < image_of.size(); ++j) {
    times[image_of[j]][SearchStage::kEncode] = encoded;
    std::copy_n(embeddings.begin() + j * dim, dim, prepared[image_of[j]]->query.begin());
  }
}

void SearchService::SearchAsync(const v1::SearchRequest* request, StopCheck stop,
                                SearchDone done) {
  const absl::Time submitted = absl::Now();
  // Counted until `done` has returned, so "none in flight" means idle.
  auto counted_done = [this, done = std::move(done)](
                          absl::StatusOr<v1::SearchResponse> result) {
    done(std::move(result));
    searches_in_flight_.fetch_sub(1);
  };
  PendingSearch item{request, std::move(stop), std::move(counted_done), submitted};
  // Only when no other search is in flight: under load the handler threads
  // must stay free for gRPC (computing on them halved throughput at
  // concurrency 16), and queued queries are batched by the workers.
  if (searches_in_flight_.fetch_add(1) == 0) {
    if (std::optional<ComputeSlots::Lease> lease = slots_.TryAcquire()) {
      std::vector<PendingSearch> alone;
      alone.push_back(std::move(item));
      return RunSearchBatch(alone, std::move(lease));
    }
  }
  search_queue_.Submit(std::move(item));
}

absl::StatusOr<v1::SearchResponse> SearchService::Search(
    const v1::SearchRequest& request, const StopCheck& stop) {
  std::promise<absl::StatusOr<v1::SearchResponse>> answer;
  std::future<absl::StatusOr<v1::SearchResponse>> ready = answer.get_future();
  SearchAsync(&request, stop, [&answer](absl::StatusOr<v1::SearchResponse> result) {
    answer.set_value(std::move(result));
  });
  return ready.get();
}

absl::StatusOr<v1::EncodeResponse> SearchService::Encode(
    const v1::EncodeRequest& request, const StopCheck& stop) {
  ASSIGN_OR_RETURN(std::shared_ptr<Bundle> bundle, RequireBundle());
  ASSIGN_OR_RETURN(ComputeSlots::Lease lease, slots_.Acquire(stop));
  std::vector<float> input;
  RETURN_IF_ERROR(
      PrepareImage(*bundle, request.image(), "image", &input, nullptr));
  RETURN_IF_ERROR(CheckStop(stop, "encoding the image"));
  const int dim = bundle->encoder().dim();
  v1::EncodeResponse response;
  response.mutable_embedding()->mutable_values()->Resize(dim, 0.0f);
  bundle->encoder().Encode(input.data(), 1,
                           response.mutable_embedding()->mutable_values()->mutable_data(),
                           /*threads=*/1);
  response.set_model_version(bundle->model_version());
  return response;
}

absl::StatusOr<v1::AddImagesResponse> SearchService::AddImages(
    const v1::AddImagesRequest& request, const StopCheck& stop) {
  if (request.images_size() == 0) {
    return absl::InvalidArgumentError("AddImages needs at least one image");
  }
  for (int i = 0; i < request.images_size(); ++i) {
    if (request.images(i).label_name().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("images[", i, "].label_name is empty"));
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Bundle> bundle, RequireBundle());
  Gallery& gallery = bundle->gallery();
  const Encoder& encoder = bundle->encoder();
  const int n = request.images_size();
  const int dim = encoder.dim();

  std::vector<CatalogItem> items(n);
  std::vector<float> embeddings(static_cast<size_t>(n) * dim);
  {
    ASSIGN_OR_RETURN(ComputeSlots::Lease lease, slots_.Acquire(stop));
    std::vector<float> input;
    for (int i = 0; i < n; ++i) {
      const v1::NewImage& in = request.images(i);
      Image decoded;
      RETURN_IF_ERROR(PrepareImage(*bundle, in.image(),
                                   absl::StrCat("images[", i, "].image"),
                                   &input, &decoded));
      CatalogItem& item = items[i];
      item.label_name = in.label_name();
      item.source = in.source();
      ASSIGN_OR_RETURN(
          item.image_png,
          PictureToStore(in.image(), decoded, options_.max_picture_side));
      RETURN_IF_ERROR(CheckStop(stop, "decoding the images"));
    }
    encoder.Encode(input.data(), n, embeddings.data(), /*threads=*/1);
  }
  // Labels: an existing name keeps its number; a new one gets the next.
  std::vector<std::string> names = gallery.label_names();
  for (int i = 0; i < n; ++i) {
    CatalogItem& item = items[i];
    auto it = std::find(names.begin(), names.end(), item.label_name);
    if (it == names.end()) {
      names.push_back(item.label_name);
      it = names.end() - 1;
    }
    item.label = static_cast<int32_t>(it - names.begin());
    item.embedding.assign(embeddings.begin() + static_cast<size_t>(i) * dim,
                          embeddings.begin() + static_cast<size_t>(i + 1) * dim);
    item.model_version = bundle->model_version();
  }
  // Past this point the write is not abandoned on cancellation: Gallery::Add
  // commits to SQLite (durable) before it returns.
  RETURN_IF_ERROR(CheckStop(stop, "adding to the gallery"));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, gallery.Add(std::move(items)));
  v1::AddImagesResponse response;
  for (int64_t id : ids) response.add_ids(id);
  response.set_gallery_size(static_cast<uint64_t>(gallery.size()));
  return response;
}

absl::StatusOr<v1::RemoveImagesResponse> SearchService::RemoveImages(
    const v1::RemoveImagesRequest& request) {
  if (request.ids_size() == 0) {
    return absl::InvalidArgumentError("RemoveImages needs at least one id");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Bundle> bundle, RequireBundle());
  Gallery& gallery = bundle->gallery();
  // All-or-nothing from the caller's view: refuse before touching anything
  // when an id is unknown.
  for (int64_t id : request.ids()) {
    absl::StatusOr<CatalogItem> item = gallery.Get(id);
    if (absl::IsNotFound(item.status())) {
      return absl::NotFoundError(absl::StrCat(
          "no image with id ", id, " in the gallery; nothing was removed"));
    }
    if (!item.ok()) return item.status();
  }
  std::vector<int64_t> ids(request.ids().begin(), request.ids().end());
  ASSIGN_OR_RETURN(int64_t removed, gallery.Remove(ids));
  v1::RemoveImagesResponse response;
  response.set_removed(static_cast<uint64_t>(removed));
  response.set_gallery_size(static_cast<uint64_t>(gallery.size()));
  return response;
}

absl::StatusOr<v1::GetImageResponse> SearchService::GetImage(
    const v1::GetImageRequest& request) {
  ASSIGN_OR_RETURN(std::shared_ptr<Bundle> bundle, RequireBundle());
  absl::StatusOr<CatalogItem> item = bundle->gallery().Get(request.id());
  if (absl::IsNotFound(item.status())) {
    return absl::NotFoundError(
        absl::StrCat("no image with id ", request.id(), " in the gallery"));
  }
  if (!item.ok()) return item.status();
  v1::GetImageResponse response;
  response.set_id(item->id);
  response.set_image_png(std::move(item->image_png));
  response.set_label(item->label);
  response.set_label_name(item->label_name);
  response.set_source(item->source);
  return response;
}

absl::StatusOr<v1::GetInfoResponse> SearchService::GetInfo(
    const v1::GetInfoRequest&) {
  v1::GetInfoResponse response;
  response.set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
  for (auto& s : stats_.Snapshot()) *response.add_stats() = std::move(s);
  std::shared_ptr<Bundle> bundle = this->bundle();
  if (bundle == nullptr) return response;
  const Gallery& gallery = bundle->gallery();
  const EncoderConfig& config = bundle->encoder().config();
  response.set_model_version(bundle->model_version());
  response.set_dim(static_cast<uint32_t>(bundle->encoder().dim()));
  response.set_metric(gallery.metric());
  response.set_index_spec(gallery.index_spec());
  response.set_gallery_size(static_cast<uint64_t>(gallery.size()));
  for (const std::string& name : gallery.label_names()) {
    response.add_label_names(name);
  }
  response.set_bundle_path(bundle->dir());
  response.set_read_only(gallery.read_only());
  for (const std::string& name :
       bundle->manifest().class_split().held_out_classes()) {
    response.add_held_out_label_names(name);
  }
  if (const ReplicationStatus r = gallery.replication(); r.shared) {
    response.set_catalog(gallery.catalog_description());
    response.set_applied_sequence(static_cast<uint64_t>(r.applied_sequence));
    response.set_replication_lag_seconds(absl::ToDoubleSeconds(r.lag));
    response.set_catalog_reachable(r.catalog_reachable);
  }
  response.set_input_height(static_cast<uint32_t>(config.input_height));
  response.set_input_width(static_cast<uint32_t>(config.input_width));
  response.set_input_channels(static_cast<uint32_t>(config.input_channels));
  return response;
}

absl::StatusOr<v1::ReloadResponse> SearchService::Reload(
    const v1::ReloadRequest& request) {
  absl::StatusOr<std::string> resolved =
      ResolveBundlePath(request.bundle_path(), options_.allowed_bundle_roots);
  if (!resolved.ok()) {
    metrics_->RecordBundleLoad(resolved.status());  // a failed reload too
    return resolved.status();
  }
  const std::string& dir = *resolved;
  absl::Status loaded = LoadBundle(dir);
  if (!loaded.ok()) {
    std::shared_ptr<Bundle> current = bundle();
    return absl::Status(
        loaded.code(),
        absl::StrCat(loaded.message(), "; bundle refused, ",
                     current == nullptr
                         ? std::string("still no bundle loaded")
                         : absl::StrCat("still serving \"", current->dir(),
                                        "\"")));
  }
  std::shared_ptr<Bundle> current = bundle();
  v1::ReloadResponse response;
  response.set_model_version(current->model_version());
  response.set_gallery_size(static_cast<uint64_t>(current->gallery().size()));
  return response;
}

}  // namespace embedsearch
