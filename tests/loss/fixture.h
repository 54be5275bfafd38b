// Reader of the PyTorch fixtures written by tests/loss/gen_fixtures.py, and
// the mixed absolute/relative comparison the parity tests use.
#ifndef EMBEDSEARCH_TESTS_LOSS_FIXTURE_H_
#define EMBEDSEARCH_TESTS_LOSS_FIXTURE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/loss/loss_types.h"

namespace embedsearch {

struct FixtureTensor {
  std::vector<int64_t> shape;  // empty for a scalar
  std::vector<double> values;  // row-major

  // 2-D as is, 1-D and 0-D as one row, 3-D (A, B, C) as (A*B) x C.
  RowMatrix Matrix() const;
  Eigen::VectorXd Vector() const;
  std::vector<int64_t> Ints() const;
};

struct FixtureCase {
  std::string name;
  std::map<std::string, std::string> options;
  std::map<std::string, FixtureTensor> tensors;

  bool Has(const std::string& tensor) const { return tensors.count(tensor); }
  const FixtureTensor& T(const std::string& tensor) const;
  double Num(const std::string& option) const;
  const std::string& Str(const std::string& option) const;
};

// Reads tests/loss/fixtures/<name>.txt from the source tree.
absl::StatusOr<std::vector<FixtureCase>> LoadFixtures(const std::string& name);

// True if `actual` matches `expected` element-wise with
//   |a - e| <= rtol * |e| + atol,  atol = 1e-10 * max(1, max_i |e_i|),
// NaN matching NaN and infinities matching by sign; otherwise fills
// `why` with the first mismatch.
bool AllClose(const double* actual, const double* expected, int64_t n,
              double rtol, std::string* why);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TESTS_LOSS_FIXTURE_H_
