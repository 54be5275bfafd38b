#include "trainer/plots.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <Eigen/Dense>

#include "absl/strings/str_format.h"
#include "trainer/svg.h"

namespace embedsearch {
namespace {

// Nice axis tick label.
std::string Tick(double v) { return absl::StrFormat("%.3g", v); }

// The held-out classes' leave-one-out precision@1 (trainer/holdout.h) as a
// second line of the precision panel, with its last value at (label_x,
// label_y); nothing when no point has it.
template <typename XFn, typename YFn>
void HeldOutLine(SvgWriter& svg, const std::vector<EpochPoint>& points, XFn X,
                 YFn Y, double label_x, double label_y) {
  const std::string color = "#ff7f0e";
  std::vector<std::pair<double, double>> line;
  double last = 0;
  for (const EpochPoint& p : points) {
    if (!p.held_out) continue;
    line.emplace_back(X(p.epoch), Y(p.held_out_precision_at_1));
    last = p.held_out_precision_at_1;
  }
  if (line.empty()) return;
  svg.Polyline(line, color, 2);
  for (const auto& [x, y] : line) svg.Circle(x, y, 3, color);
  svg.Text(label_x, label_y, absl::StrFormat("held-out classes: %.4f", last),
           11, "end", color);
}

// One line-chart panel at (x0, y0) of size w x h.
void Panel(SvgWriter& svg, double x0, double y0, double w, double h,
           const std::vector<EpochPoint>& all_points, bool loss,
           const std::string& color, const std::string& label) {
  const double left = x0 + 55, right = x0 + w - 15, top = y0 + 30,
               bottom = y0 + h - 40;
  svg.Text((left + right) / 2, y0 + 18, label, 14, "middle");
  svg.Line(left, bottom, right, bottom, "black");
  svg.Line(left, top, left, bottom, "black");
  std::vector<EpochPoint> kept;
  for (const EpochPoint& p : all_points) {
    if (loss || p.evaluated) kept.push_back(p);
  }
  const std::vector<EpochPoint>& points = kept;
  if (points.empty()) {
    svg.Text((left + right) / 2, (top + bottom) / 2, "no data", 12, "middle");
    return;
  }
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const EpochPoint& p : points) {
    const double v = loss ? p.loss : p.precision_at_1;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    if (!loss && p.held_out) {
      lo = std::min(lo, p.held_out_precision_at_1);
      hi = std::max(hi, p.held_out_precision_at_1);
    }
  }
  if (!loss) hi = std::min(1.0, hi + 0.02), lo = std::max(0.0, lo - 0.02);
  if (loss) lo = std::min(lo, 0.0);
  if (hi - lo < 1e-9) hi = lo + 1;
  const int first = points.front().epoch, last = points.back().epoch;
  const double span = std::max(1, last - first);
  auto X = [&](int e) {
    return points.size() == 1 ? (left + right) / 2
                              : left + (right - left) * (e - first) / span;
  };
  auto Y = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };
  for (int i = 0; i <= 4; ++i) {
    const double v = lo + (hi - lo) * i / 4;
    svg.Line(left, Y(v), right, Y(v), "#dddddd");
    svg.Text(left - 5, Y(v) + 4, Tick(v), 10, "end");
  }
  const int step = std::max(1, (last - first + 1) / 10);
  for (int e = first; e <= last; e += step) {
    svg.Text(X(e), bottom + 15, absl::StrFormat("%d", e), 10, "middle");
  }
  svg.Text((left + right) / 2, bottom + 32, "epoch", 12, "middle");
  std::vector<std::pair<double, double>> line;
  for (const EpochPoint& p : points) {
    const double v = loss ? p.loss : p.precision_at_1;
    line.emplace_back(X(p.epoch), Y(v));
  }
  svg.Polyline(line, color, 2);
  for (const auto& [x, y] : line) svg.Circle(x, y, 3, color);
  const EpochPoint& end = points.back();
  svg.Text(right - 4, top + 14,
           absl::StrFormat("last: %.4f", loss ? end.loss : end.precision_at_1),
           11, "end", color);
  if (!loss) HeldOutLine(svg, points, X, Y, right - 4, top + 28);
}

bool HasHeldOut(const std::vector<EpochPoint>& points) {
  return std::any_of(points.begin(), points.end(),
                     [](const EpochPoint& p) { return p.held_out; });
}

}  // namespace

std::string TrainingCurveSvg(const std::vector<EpochPoint>& points,
                             const std::string& title) {
  SvgWriter svg(820, 340);
  svg.Text(410, 20, title, 15, "middle");
  Panel(svg, 0, 25, 410, 315, points, /*loss=*/true, "#d62728",
        "training loss (epoch mean)");
  Panel(svg, 410, 25, 410, 315, points, /*loss=*/false, "#1f77b4",
        HasHeldOut(points) ? "precision@1 (test vs train; held-out classes)"
                           : "precision@1 (test vs train gallery)");
  return svg.Finish();
}

std::vector<std::pair<float, float>> Pca2d(const float* embeddings, int64_t n,
                                           int dim,
                                           std::vector<float>* components) {
  std::vector<std::pair<float, float>> out(n, {0.f, 0.f});
  if (components != nullptr) components->assign(2 * std::max(dim, 0), 0.f);
  if (n <= 0 || dim <= 0) return out;
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const RowMajor> x(embeddings, n, dim);
  const Eigen::MatrixXd centred =
      x.cast<double>().rowwise() - x.cast<double>().colwise().mean();
  const Eigen::MatrixXd covariance = centred.transpose() * centred;
  // Eigenvalues come in increasing order: the last columns are PC1, PC2.
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(covariance);
  Eigen::MatrixXd pcs = Eigen::MatrixXd::Zero(dim, 2);
  for (int c = 0; c < std::min(2, dim); ++c) {
    Eigen::VectorXd v = solver.eigenvectors().col(dim - 1 - c);
    // An eigenvector's sign is arbitrary; fix it so the picture is stable.
    Eigen::Index largest = 0;
    v.cwiseAbs().maxCoeff(&largest);
    if (v[largest] < 0) v = -v;
    pcs.col(c) = v;
  }
  if (components != nullptr) {
    for (int c = 0; c < 2; ++c)
      for (int d = 0; d < dim; ++d) (*components)[c * dim + d] = pcs(d, c);
  }
  const Eigen::MatrixXd projected = centred * pcs;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = {static_cast<float>(projected(i, 0)), static_cast<float>(projected(i, 1))};
  }
  return out;
}

std::string EmbeddingMapSvg(const float* embeddings, int64_t n, int dim,
                            const std::vector<int32_t>& labels,
                            const std::vector<std::string>& label_names,
                            const std::string& title, int64_t max_points) {
  const double size = 560, legend = 170;
  SvgWriter svg(static_cast<int>(size + legend), static_cast<int>(size + 30));
  svg.Text((size + legend) / 2, 20, title, 15, "middle");
  std::vector<std::pair<float, float>> xy = Pca2d(embeddings, n, dim);
  const int64_t stride =
      std::max<int64_t>(1, (n + std::max<int64_t>(1, max_points) - 1) /
                               std::max<int64_t>(1, max_points));
  float lo_x = 0, hi_x = 0, lo_y = 0, hi_y = 0;
  bool first = true;
  for (int64_t i = 0; i < n; i += stride) {
    const auto& [x, y] = xy[i];
    if (first) lo_x = hi_x = x, lo_y = hi_y = y, first = false;
    lo_x = std::min(lo_x, x), hi_x = std::max(hi_x, x);
    lo_y = std::min(lo_y, y), hi_y = std::max(hi_y, y);
  }
  const double pad = 20, top = 30;
  const double sx = (hi_x - lo_x) > 1e-12 ? (size - 2 * pad) / (hi_x - lo_x) : 0;
  const double sy = (hi_y - lo_y) > 1e-12 ? (size - 2 * pad) / (hi_y - lo_y) : 0;
  svg.Rect(pad / 2, top, size - pad, size - pad, "none", "#cccccc");
  for (int64_t i = 0; i < n; i += stride) {
    const double px = pad + (xy[i].first - lo_x) * sx;
    const double py = top + size - 2 * pad - (xy[i].second - lo_y) * sy;
    svg.Circle(px, py, 2.2, CategoryColor(labels[i]), 0.6);
  }
  int num_labels = static_cast<int>(label_names.size());
  for (int32_t l : labels) num_labels = std::max(num_labels, l + 1);
  for (int l = 0; l < num_labels; ++l) {
    const double y = top + 20 + 20 * l;
    svg.Circle(size + 10, y - 4, 6, CategoryColor(l));
    const std::string name = l < static_cast<int>(label_names.size())
                                 ? label_names[l]
                                 : absl::StrFormat("%d", l);
    svg.Text(size + 22, y, name, 12);
  }
  svg.Text(size / 2, size + 22, "PC1", 11, "middle", "#555555");
  svg.Text(8, top + size / 2, "PC2", 11, "middle", "#555555", -90);
  return svg.Finish();
}

}  // namespace embedsearch
