#include "trainer/svg.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace embedsearch {

SvgWriter::SvgWriter(int width, int height) : width_(width), height_(height) {}

void SvgWriter::Rect(double x, double y, double w, double h,
                     const std::string& fill, const std::string& stroke) {
  absl::StrAppendFormat(
      &body_,
      "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
      "fill=\"%s\" stroke=\"%s\"/>\n",
      x, y, w, h, fill, stroke);
}

void SvgWriter::Line(double x1, double y1, double x2, double y2,
                     const std::string& stroke, double width) {
  absl::StrAppendFormat(&body_,
                        "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                        "stroke=\"%s\" stroke-width=\"%.2f\"/>\n",
                        x1, y1, x2, y2, stroke, width);
}

void SvgWriter::Polyline(const std::vector<std::pair<double, double>>& points,
                         const std::string& stroke, double width) {
  if (points.empty()) return;
  std::string pts;
  for (const auto& [x, y] : points) absl::StrAppendFormat(&pts, "%.2f,%.2f ", x, y);
  absl::StrAppendFormat(&body_,
                        "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" "
                        "stroke-width=\"%.2f\"/>\n",
                        pts, stroke, width);
}

void SvgWriter::Circle(double cx, double cy, double r, const std::string& fill,
                       double opacity) {
  absl::StrAppendFormat(&body_,
                        "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\" "
                        "fill-opacity=\"%.2f\"/>\n",
                        cx, cy, r, fill, opacity);
}

void SvgWriter::Text(double x, double y, const std::string& text, int size,
                     const std::string& anchor, const std::string& fill,
                     double rotate_degrees) {
  std::string transform;
  if (rotate_degrees != 0) {
    transform = absl::StrFormat(" transform=\"rotate(%.1f %.2f %.2f)\"",
                                rotate_degrees, x, y);
  }
  absl::StrAppendFormat(&body_,
                        "<text x=\"%.2f\" y=\"%.2f\" font-family=\"sans-serif\" "
                        "font-size=\"%d\" text-anchor=\"%s\" fill=\"%s\"%s>%s"
                        "</text>\n",
                        x, y, size, anchor, fill, transform, XmlEscape(text));
}

std::string SvgWriter::Finish() const {
  return absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
      absl::StrFormat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                      "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
                      width_, height_, width_, height_),
      absl::StrFormat("<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
                      width_, height_),
      body_, "</svg>\n");
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

const std::string& CategoryColor(int i) {
  static const std::array<std::string, 10> kColors = {
      "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kColors[((i % 10) + 10) % 10];
}

}  // namespace embedsearch
