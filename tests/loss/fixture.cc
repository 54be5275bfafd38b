#include "tests/loss/fixture.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/file.h"

namespace embedsearch {

RowMatrix FixtureTensor::Matrix() const {
  int64_t rows = 1, cols = 1;
  if (shape.size() == 1) {
    cols = shape[0];
  } else if (shape.size() == 2) {
    rows = shape[0];
    cols = shape[1];
  } else if (shape.size() == 3) {
    rows = shape[0] * shape[1];
    cols = shape[2];
  }
  return Eigen::Map<const RowMatrix>(values.data(), rows, cols);
}

Eigen::VectorXd FixtureTensor::Vector() const {
  return Eigen::Map<const Eigen::VectorXd>(values.data(), values.size());
}

std::vector<int64_t> FixtureTensor::Ints() const {
  std::vector<int64_t> out;
  for (double v : values) out.push_back(static_cast<int64_t>(v));
  return out;
}

const FixtureTensor& FixtureCase::T(const std::string& tensor) const {
  static const FixtureTensor kEmpty;
  auto it = tensors.find(tensor);
  return it == tensors.end() ? kEmpty : it->second;
}

double FixtureCase::Num(const std::string& option) const {
  return std::strtod(Str(option).c_str(), nullptr);
}

const std::string& FixtureCase::Str(const std::string& option) const {
  static const std::string kEmpty;
  auto it = options.find(option);
  return it == options.end() ? kEmpty : it->second;
}

absl::StatusOr<std::vector<FixtureCase>> LoadFixtures(const std::string& name) {
  const std::string path = absl::StrCat(EMBEDSEARCH_SOURCE_DIR,
                                        "/tests/loss/fixtures/", name, ".txt");
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::vector<FixtureCase> cases;
  FixtureCase current;
  bool open = false;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> tok = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto bad = [&](absl::string_view why) {
      return absl::DataLossError(absl::StrCat(path, ":", line_no, ": ", why));
    };
    if (tok[0] == "case" && tok.size() == 2 && !open) {
      current = FixtureCase();
      current.name = tok[1];
      open = true;
    } else if (tok[0] == "opt" && tok.size() == 3 && open) {
      current.options[tok[1]] = tok[2];
    } else if (tok[0] == "tensor" && tok.size() >= 3 && open) {
      FixtureTensor t;
      const int64_t ndim = std::strtoll(tok[2].c_str(), nullptr, 10);
      int64_t numel = 1;
      for (int64_t d = 0; d < ndim; ++d) {
        if (3 + d >= static_cast<int64_t>(tok.size()))
          return bad("short shape");
        t.shape.push_back(std::strtoll(tok[3 + d].c_str(), nullptr, 10));
        numel *= t.shape.back();
      }
      if (static_cast<int64_t>(tok.size()) != 3 + ndim + numel) {
        return bad("value count does not match the shape");
      }
      for (int64_t k = 0; k < numel; ++k) {
        t.values.push_back(std::strtod(tok[3 + ndim + k].c_str(), nullptr));
      }
      current.tensors[tok[1]] = std::move(t);
    } else if (tok[0] == "end" && open) {
      cases.push_back(std::move(current));
      open = false;
    } else {
      return bad("unexpected record");
    }
  }
  if (open) return absl::DataLossError(path + ": last case has no 'end'");
  return cases;
}

bool AllClose(const double* actual, const double* expected, int64_t n,
              double rtol, std::string* why) {
  double scale = 1;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(expected[i])) {
      scale = std::max(scale, std::abs(expected[i]));
    }
  }
  const double atol = 1e-10 * scale;
  for (int64_t i = 0; i < n; ++i) {
    const double a = actual[i], e = expected[i];
    bool ok;
    if (std::isnan(e)) {
      ok = std::isnan(a);
    } else if (std::isinf(e)) {
      ok = a == e;
    } else {
      ok = std::abs(a - e) <= rtol * std::abs(e) + atol;
    }
    if (!ok) {
      std::ostringstream s;
      s.precision(17);
      s << "element " << i << ": got " << a << ", expected " << e;
      *why = s.str();
      return false;
    }
  }
  return true;
}

}  // namespace embedsearch
