// Inline SVG figures for `moeslice report`: a perceptual colour scale (viridis) with its legend, a
// heatmap (optionally with marked cells and printed values) and a line/point chart. Each function
// returns one self-contained <svg> element; text is escaped; cells and points carry <title>
// tooltips, which every browser shows on hover without any script.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moeslice {

struct Rgb {
  double r = 0, g = 0, b = 0;  // 0..1, sRGB
};

// Viridis (perceptually uniform, readable in grey and by colour-blind readers); t in [0, 1].
Rgb viridis(double t);
std::string css_color(const Rgb& color);
// WCAG relative luminance, to pick dark or light text over a colour.
double relative_luminance(const Rgb& color);

// "Nice" tick positions (1, 2, 2.5, 5 x 10^k steps) covering [low, high], about `target` of them.
std::vector<double> nice_ticks(double low, double high, int target);

struct HeatmapSpec {
  int64_t rows = 0;
  int64_t columns = 0;
  std::vector<double> values;  // rows x columns, row-major; NaN = not applicable (grey cell)
  std::vector<std::string> row_labels;     // one per row
  std::vector<std::string> column_labels;  // one per column
  std::string row_title;                   // axis titles, e.g. "layer" and "expert"
  std::string column_title;
  std::vector<std::string> tooltips;  // one per cell, or empty for none
  std::vector<char> marked;           // one per cell (non-zero: draw a dot), or empty
  std::string na_tooltip;             // tooltip of NaN cells
  double value_min = 0;
  double value_max = 1;
  int cell_width = 12;
  int cell_height = 12;
  bool show_values = false;  // print each value inside its cell (small matrices)
  int value_decimals = 2;
  bool rotate_column_labels = false;  // long column labels, written at an angle above the cells
};
std::string render_heatmap(const HeatmapSpec& spec);

struct LegendMarker {
  double value = 0;
  std::string label;
};

struct ColorLegendSpec {
  double value_min = 0;
  double value_max = 1;
  bool percent = true;  // tick labels as percentages
  std::string title;
  std::vector<LegendMarker> markers;  // e.g. the uniform share 1/E
  std::string dot_label;              // explains the dots drawn on marked cells, "" for none
  std::string note;                   // text right of the bar, e.g. where colours saturate
  int width = 260;
  std::string gradient_id = "viridis-legend";  // unique within the page
};
std::string render_color_legend(const ColorLegendSpec& spec);

struct ChartSeries {
  std::vector<double> x;
  std::vector<double> y;
  std::string name;  // shown in the legend; "" keeps it out of the legend
  std::string color = "#3b5bdb";
  double stroke_width = 1.5;
  double opacity = 1.0;
  bool line = true;
  bool points = false;
  bool dashed = false;
  std::vector<std::string> point_labels;    // text next to each point, or empty
  std::vector<std::string> point_tooltips;  // hover text per point, or empty
  std::string tooltip;                      // hover text of the whole line
};

struct ChartGuide {
  double x = 0;
  std::string label;
};

struct LineChartSpec {
  int width = 560;
  int height = 340;
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  std::string x_title;
  std::string y_title;
  bool x_percent = false;
  bool y_percent = false;
  bool x_log2 = false;          // logarithmic x axis (x_min must be > 0)
  std::vector<double> x_ticks;  // explicit ticks; empty: nice ticks
  std::vector<ChartSeries> series;
  std::vector<ChartGuide> guides;  // dashed vertical lines with a label at the top
};
std::string render_line_chart(const LineChartSpec& spec);

}  // namespace moeslice
