// A tiny SVG writer: just enough for line charts and scatter plots, so the
// trainer's pictures need no plotting library.
#ifndef EMBEDSEARCH_TRAINER_SVG_H_
#define EMBEDSEARCH_TRAINER_SVG_H_

#include <string>
#include <utility>
#include <vector>

namespace embedsearch {

class SvgWriter {
 public:
  SvgWriter(int width, int height);

  // Colours are any SVG colour string ("#1f77b4", "black").
  void Rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& stroke = "none");
  void Line(double x1, double y1, double x2, double y2,
            const std::string& stroke, double width = 1.0);
  void Polyline(const std::vector<std::pair<double, double>>& points,
                const std::string& stroke, double width = 1.5);
  void Circle(double cx, double cy, double r, const std::string& fill,
              double opacity = 1.0);
  // anchor: "start", "middle" or "end". Text is XML-escaped.
  void Text(double x, double y, const std::string& text, int size = 12,
            const std::string& anchor = "start",
            const std::string& fill = "black", double rotate_degrees = 0);

  // The complete document.
  std::string Finish() const;

 private:
  int width_;
  int height_;
  std::string body_;
};

// XML text escaping (&, <, >, ", ').
std::string XmlEscape(const std::string& s);

// Ten distinguishable colours (matplotlib's tab10), index modulo 10.
const std::string& CategoryColor(int i);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_SVG_H_
