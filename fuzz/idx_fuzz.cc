// The IDX parser: arbitrary bytes as a (possibly gzipped) IDX file. Must give
// DataLoss/InvalidArgument or an array whose dims match its data, never
// crash, and never allocate more than the input can hold.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto array = embedsearch::ParseIdx(
      absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!array.ok()) {
    const auto code = array.status().code();
    if (code != absl::StatusCode::kDataLoss &&
        code != absl::StatusCode::kInvalidArgument) {
      abort();
    }
    return 0;
  }
  size_t total = 1;
  for (uint32_t d : array->dims) total *= d;
  if (array->dims.empty() || array->dims.size() > 4 ||
      total != array->data.size() || total > size * 1040) {
    abort();
  }
  return 0;
}
