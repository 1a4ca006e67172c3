// Heatmap, colour legend and line chart as inline SVG (see svg_charts.h).
#include "report/svg_charts.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/core.h>

#include "report/html_writer.h"

namespace moeslice {
namespace {

constexpr const char* kInk = "#1d2330";
constexpr const char* kMuted = "#5f6b7a";
constexpr const char* kGrid = "#e6e9ef";
constexpr const char* kAxis = "#b8bfca";
constexpr const char* kNotApplicable = "#e9ecef";
// A white outline behind text drawn over lines.
constexpr const char* kHalo =
    " paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\" stroke-linejoin=\"round\"";
constexpr double kCharWidth = 6.4;  // average width of an 11px sans-serif character

// Matplotlib's viridis at 0, 0.1, ..., 1.
constexpr std::array<std::array<int, 3>, 11> kViridis = {{{0x44, 0x01, 0x54},
                                                          {0x48, 0x24, 0x75},
                                                          {0x41, 0x44, 0x87},
                                                          {0x35, 0x5f, 0x8d},
                                                          {0x2a, 0x78, 0x8e},
                                                          {0x21, 0x91, 0x8c},
                                                          {0x22, 0xa8, 0x84},
                                                          {0x44, 0xbf, 0x70},
                                                          {0x7a, 0xd1, 0x51},
                                                          {0xbd, 0xdf, 0x26},
                                                          {0xfd, 0xe7, 0x25}}};

// SVG coordinates with at most one decimal ("12", "12.5").
std::string num(double value) {
  std::string text = fmt::format("{:.1f}", value);
  if (text.size() > 2 && text.ends_with(".0")) text.resize(text.size() - 2);
  if (text == "-0") text = "0";
  return text;
}

double text_width(const std::string& text, double char_width = kCharWidth) {
  return static_cast<double>(text.size()) * char_width;
}

double normalized(double value, double low, double high) {
  if (!(high > low)) return 0;
  return std::clamp((value - low) / (high - low), 0.0, 1.0);
}

std::string tick_text(double value, bool percent, double step) {
  // Enough decimals for the step, trailing zeros dropped (12.5%, 25%, 0.35).
  const double scaled_step = percent ? 100 * step : step;
  const int decimals = scaled_step >= 10 ? 1 : scaled_step >= 0.1 ? 2 : 3;
  std::string text = format_fixed(percent ? 100 * value : value, decimals);
  if (text.find('.') != std::string::npos) {
    while (text.ends_with("0")) text.pop_back();
    if (text.ends_with(".")) text.pop_back();
  }
  return percent ? text + "%" : text;
}

// The smallest label step from a 1-2-4/5 ladder that leaves `min_pixels` between labels.
int64_t label_step(int cell, double min_pixels) {
  static constexpr int64_t kSteps[] = {1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256, 512};
  for (const int64_t step : kSteps)
    if (static_cast<double>(step * cell) >= min_pixels) return step;
  return 1024;
}

std::string title_element(const std::string& text) {
  return text.empty() ? std::string() : "<title>" + escape_html(text) + "</title>";
}

}  // namespace

Rgb viridis(double t) {
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * static_cast<double>(kViridis.size() - 1);
  const size_t low = std::min(static_cast<size_t>(t), kViridis.size() - 2);
  const double f = t - static_cast<double>(low);
  Rgb color;
  color.r = ((1 - f) * kViridis[low][0] + f * kViridis[low + 1][0]) / 255.0;
  color.g = ((1 - f) * kViridis[low][1] + f * kViridis[low + 1][1]) / 255.0;
  color.b = ((1 - f) * kViridis[low][2] + f * kViridis[low + 1][2]) / 255.0;
  return color;
}

std::string css_color(const Rgb& color) {
  const auto byte = [](double channel) {
    return static_cast<int>(std::lround(std::clamp(channel, 0.0, 1.0) * 255.0));
  };
  return fmt::format("#{:02x}{:02x}{:02x}", byte(color.r), byte(color.g), byte(color.b));
}

double relative_luminance(const Rgb& color) {
  const auto linear = [](double c) {
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * linear(color.r) + 0.7152 * linear(color.g) + 0.0722 * linear(color.b);
}

std::vector<double> nice_ticks(double low, double high, int target) {
  std::vector<double> ticks;
  if (!std::isfinite(low) || !std::isfinite(high) || !(high > low) || target < 1) return ticks;
  const double rough = (high - low) / target;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  double step = power;
  for (const double factor : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = factor * power;
    if (step >= rough) break;
  }
  const double first = std::ceil(low / step - 1e-9) * step;
  for (double tick = first; tick <= high + step * 1e-9; tick += step)
    ticks.push_back(std::fabs(tick) < step * 1e-9 ? 0.0 : tick);
  return ticks;
}

std::string render_heatmap(const HeatmapSpec& spec) {
  const int cw = spec.cell_width;
  const int ch = spec.cell_height;
  const int gap = std::min(cw, ch) >= 10 ? 1 : 0;
  double longest_row_label = 0;
  for (const auto& label : spec.row_labels)
    longest_row_label = std::max(longest_row_label, text_width(label));
  double longest_column_label = 0;
  for (const auto& label : spec.column_labels)
    longest_column_label = std::max(longest_column_label, text_width(label));

  const double row_title_width = spec.row_title.empty() ? 0 : 18;
  const double left = std::ceil(row_title_width + longest_row_label + 8);
  double top = 0;
  double right = 6;
  if (spec.rotate_column_labels) {
    top = std::ceil(longest_column_label * 0.72 + 12);
    right = std::max(right, std::ceil(longest_column_label * 0.72 - cw / 2.0 + 4));
  } else {
    top = spec.column_title.empty() ? 18 : 34;
  }
  const double grid_width = static_cast<double>(spec.columns * cw);
  const double grid_height = static_cast<double>(spec.rows * ch);
  const double width = left + grid_width + right;
  const double height = top + grid_height + 4;

  std::string svg = fmt::format(
      "<svg class=\"heatmap\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\">",
      num(width), num(height), num(width), num(height));
  // Axis titles and labels.
  if (!spec.row_title.empty())
    svg += fmt::format(
        "<text x=\"11\" y=\"{}\" transform=\"rotate(-90 11 {})\" text-anchor=\"middle\" "
        "font-size=\"11\" fill=\"{}\">{}</text>",
        num(top + grid_height / 2), num(top + grid_height / 2), kMuted,
        escape_html(spec.row_title));
  const int64_t row_step = spec.rotate_column_labels ? 1 : label_step(ch, 12);
  for (int64_t r = 0; r < spec.rows; ++r) {
    if (r % row_step != 0 || static_cast<size_t>(r) >= spec.row_labels.size()) continue;
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"central\" "
        "font-size=\"11\" fill=\"{}\">{}</text>",
        num(left - 5), num(top + static_cast<double>(r * ch) + ch / 2.0), kMuted,
        escape_html(spec.row_labels[static_cast<size_t>(r)]));
  }
  if (spec.rotate_column_labels) {
    for (int64_t c = 0; c < spec.columns && static_cast<size_t>(c) < spec.column_labels.size();
         ++c) {
      const double x = left + static_cast<double>(c * cw) + cw / 2.0;
      svg += fmt::format(
          "<text x=\"{}\" y=\"{}\" transform=\"rotate(-45 {} {})\" font-size=\"11\" "
          "fill=\"{}\">{}</text>",
          num(x + 2), num(top - 6), num(x + 2), num(top - 6), kMuted,
          escape_html(spec.column_labels[static_cast<size_t>(c)]));
    }
  } else {
    if (!spec.column_title.empty())
      svg += fmt::format(
          "<text x=\"{}\" y=\"11\" text-anchor=\"middle\" font-size=\"11\" fill=\"{}\">{}</text>",
          num(left + grid_width / 2), kMuted, escape_html(spec.column_title));
    double widest = 0;
    for (const auto& label : spec.column_labels) widest = std::max(widest, text_width(label));
    const int64_t column_step = label_step(cw, std::max(36.0, widest + 14));
    for (int64_t c = 0; c < spec.columns; c += column_step) {
      if (static_cast<size_t>(c) >= spec.column_labels.size()) break;
      svg += fmt::format(
          "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10.5\" "
          "fill=\"{}\">{}</text>",
          num(left + static_cast<double>(c * cw) + cw / 2.0), num(top - 6), kMuted,
          escape_html(spec.column_labels[static_cast<size_t>(c)]));
    }
  }

  // Cells, one group per row.
  svg += fmt::format("<g transform=\"translate({} {})\" shape-rendering=\"crispEdges\">", num(left),
                     num(top));
  for (int64_t r = 0; r < spec.rows; ++r) {
    for (int64_t c = 0; c < spec.columns; ++c) {
      const size_t i = static_cast<size_t>(r * spec.columns + c);
      const double value = i < spec.values.size() ? spec.values[i] : std::nan("");
      const bool applicable = std::isfinite(value);
      const std::string fill =
          applicable ? css_color(viridis(normalized(value, spec.value_min, spec.value_max)))
                     : kNotApplicable;
      const std::string tooltip = !applicable                ? spec.na_tooltip
                                  : i < spec.tooltips.size() ? spec.tooltips[i]
                                                             : "";
      svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">{}</rect>",
                         c * cw, r * ch, cw - gap, ch - gap, fill, title_element(tooltip));
    }
  }
  svg += "</g>";

  // Dots on marked cells and printed values, drawn over the cells.
  const bool any_marked =
      std::any_of(spec.marked.begin(), spec.marked.end(), [](char marked) { return marked != 0; });
  if (any_marked || spec.show_values) {
    svg += fmt::format("<g transform=\"translate({} {})\">", num(left), num(top));
    const double radius = std::max(1.3, std::min(cw - gap, ch - gap) * 0.2);
    const double font = std::min(11.0, ch * 0.42);
    for (int64_t r = 0; r < spec.rows; ++r) {
      for (int64_t c = 0; c < spec.columns; ++c) {
        const size_t i = static_cast<size_t>(r * spec.columns + c);
        const double cx = static_cast<double>(c * cw) + (cw - gap) / 2.0;
        const double cy = static_cast<double>(r * ch) + (ch - gap) / 2.0;
        if (i < spec.marked.size() && spec.marked[i] != 0)
          svg += fmt::format(
              "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"#fff\" stroke=\"{}\" "
              "stroke-width=\"0.7\" pointer-events=\"none\"/>",
              num(cx), num(cy), num(radius), kInk);
        if (spec.show_values && i < spec.values.size() && std::isfinite(spec.values[i])) {
          const Rgb color = viridis(normalized(spec.values[i], spec.value_min, spec.value_max));
          svg += fmt::format(
              "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"central\" "
              "font-size=\"{}\" fill=\"{}\" pointer-events=\"none\">{}</text>",
              num(cx), num(cy), num(font), relative_luminance(color) < 0.3 ? "#fff" : kInk,
              format_fixed(spec.values[i], spec.value_decimals));
        }
      }
    }
    svg += "</g>";
  }
  svg += "</svg>";
  return svg;
}

std::string render_color_legend(const ColorLegendSpec& spec) {
  // [title] [bar: markers above, ticks below] [note] [dot explanation], on one line.
  const double title_width = spec.title.empty() ? 0 : text_width(spec.title, 6.2) + 14;
  const double bar_left = 4 + title_width;
  const double bar_width = spec.width;
  const double bar_top = 18;  // room for marker labels above the bar
  const double bar_height = 10;
  const double middle = bar_top + bar_height / 2;
  double width = bar_left + bar_width + 16;
  const double note_x = width;
  if (!spec.note.empty()) width += text_width(spec.note, 6.0) + 18;
  const double dot_x = width;
  if (!spec.dot_label.empty()) width += 24 + text_width(spec.dot_label, 6.4);
  const double height = bar_top + bar_height + 20;

  std::string svg = fmt::format(
      "<svg class=\"legend\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\">",
      num(width), num(height), num(width), num(height));
  svg += fmt::format("<defs><linearGradient id=\"{}\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">",
                     escape_html(spec.gradient_id));
  for (int stop = 0; stop <= 10; ++stop)
    svg += fmt::format("<stop offset=\"{}%\" stop-color=\"{}\"/>", stop * 10,
                       css_color(viridis(stop / 10.0)));
  svg += "</linearGradient></defs>";
  if (!spec.title.empty())
    svg += fmt::format(
        "<text x=\"4\" y=\"{}\" dominant-baseline=\"central\" font-size=\"11\" "
        "fill=\"{}\">{}</text>",
        num(middle), kMuted, escape_html(spec.title));
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"url(#{})\"/>",
      num(bar_left), num(bar_top), num(bar_width), num(bar_height), escape_html(spec.gradient_id));
  const auto ticks = nice_ticks(spec.value_min, spec.value_max, 4);
  const double step = ticks.size() >= 2 ? ticks[1] - ticks[0] : spec.value_max - spec.value_min;
  for (const double tick : ticks) {
    const double x = bar_left + bar_width * normalized(tick, spec.value_min, spec.value_max);
    svg += fmt::format(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10.5\" fill=\"{}\">{}</text>",
        num(x), num(x), num(bar_top + bar_height), num(bar_top + bar_height + 4), kAxis, num(x),
        num(bar_top + bar_height + 15), kMuted, tick_text(tick, spec.percent, step));
  }
  for (const auto& marker : spec.markers) {
    const double x =
        bar_left + bar_width * normalized(marker.value, spec.value_min, spec.value_max);
    svg += fmt::format(
        "<path d=\"M{} {}l-4 -6h8z\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{}\" font-size=\"10.5\" fill=\"{}\">{}</text>",
        num(x), num(bar_top - 1), kInk, num(x < bar_left + 30 ? x - 4 : x), num(bar_top - 9),
        x < bar_left + 30 ? "start" : "middle", kInk, escape_html(marker.label));
  }
  if (!spec.note.empty())
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" dominant-baseline=\"central\" font-size=\"10.5\" "
        "fill=\"{}\">{}</text>",
        num(note_x), num(middle), kMuted, escape_html(spec.note));
  if (!spec.dot_label.empty())
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>"
        "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"#fff\" stroke=\"{}\" stroke-width=\"0.7\"/>"
        "<text x=\"{}\" y=\"{}\" dominant-baseline=\"central\" font-size=\"11\" "
        "fill=\"{}\">{}</text>",
        num(dot_x), num(middle - 7), css_color(viridis(0.35)), num(dot_x + 7), num(middle), kInk,
        num(dot_x + 20), num(middle), kInk, escape_html(spec.dot_label));
  svg += "</svg>";
  return svg;
}

std::string render_line_chart(const LineChartSpec& spec) {
  std::vector<const ChartSeries*> named;
  for (const auto& series : spec.series)
    if (!series.name.empty()) named.push_back(&series);
  const double legend_height = named.empty() ? 0 : 20;
  const double left = 58, right = 16, bottom = 44;
  const double top = 14 + legend_height;
  const double width = spec.width, height = spec.height;
  const double plot_width = width - left - right;
  const double plot_height = height - top - bottom;
  const bool log_x = spec.x_log2 && spec.x_min > 0 && spec.x_max > spec.x_min;
  const auto px = [&](double x) {
    if (log_x)
      return left + plot_width * (std::log2(std::max(x, spec.x_min)) - std::log2(spec.x_min)) /
                        (std::log2(spec.x_max) - std::log2(spec.x_min));
    return left +
           plot_width *
               (spec.x_max > spec.x_min ? (x - spec.x_min) / (spec.x_max - spec.x_min) : 0.5);
  };
  const auto py = [&](double y) {
    return top +
           plot_height *
               (1 - (spec.y_max > spec.y_min ? (y - spec.y_min) / (spec.y_max - spec.y_min) : 0.5));
  };

  std::string svg = fmt::format(
      "<svg class=\"chart\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\">",
      num(width), num(height), num(width), num(height));

  // Legend, left to right above the plot.
  double legend_x = left;
  for (const ChartSeries* series : named) {
    const double y = 12;
    if (series->line)
      svg += fmt::format(
          "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}/>",
          num(legend_x), num(legend_x + 18), y, y, series->color,
          num(std::max(series->stroke_width, 1.5)),
          series->dashed ? " stroke-dasharray=\"4 3\"" : "");
    if (series->points)
      svg += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>", num(legend_x + 9),
                         y, series->color);
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" dominant-baseline=\"central\" font-size=\"11.5\" "
        "fill=\"{}\">{}</text>",
        num(legend_x + 24), y, kInk, escape_html(series->name));
    legend_x += 24 + text_width(series->name, 6.8) + 18;
  }

  // Grid, ticks and axis titles.
  const auto y_ticks = nice_ticks(spec.y_min, spec.y_max, 5);
  const double y_step = y_ticks.size() >= 2 ? y_ticks[1] - y_ticks[0] : spec.y_max - spec.y_min;
  for (const double tick : y_ticks) {
    const double y = py(tick);
    svg += fmt::format(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"central\" "
        "font-size=\"10.5\" fill=\"{}\">{}</text>",
        num(left), num(left + plot_width), num(y), num(y), kGrid, num(left - 6), num(y), kMuted,
        tick_text(tick, spec.y_percent, y_step));
  }
  const auto x_ticks = spec.x_ticks.empty() ? nice_ticks(spec.x_min, spec.x_max, 8) : spec.x_ticks;
  const double x_step = x_ticks.size() >= 2 ? x_ticks[1] - x_ticks[0] : spec.x_max - spec.x_min;
  for (const double tick : x_ticks) {
    const double x = px(tick);
    svg += fmt::format(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10.5\" fill=\"{}\">{}</text>",
        num(x), num(x), num(top + plot_height), num(top + plot_height + 4), kAxis, num(x),
        num(top + plot_height + 16), kMuted, tick_text(tick, spec.x_percent, x_step));
  }
  svg += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\"/>", num(left),
                     num(left + plot_width), num(top + plot_height), num(top + plot_height), kAxis);
  if (!spec.x_title.empty())
    svg += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11.5\" fill=\"{}\">{}</text>",
        num(left + plot_width / 2), num(height - 8), kMuted, escape_html(spec.x_title));
  if (!spec.y_title.empty())
    svg += fmt::format(
        "<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\" "
        "font-size=\"11.5\" fill=\"{}\">{}</text>",
        num(top + plot_height / 2), num(top + plot_height / 2), kMuted, escape_html(spec.y_title));

  // Vertical guides, labelled inside the plot at staggered heights.
  for (size_t g = 0; g < spec.guides.size(); ++g) {
    const double x = px(spec.guides[g].x);
    svg += fmt::format(
        "<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-dasharray=\"3 3\"/>"
        "<text x=\"{}\" y=\"{}\" font-size=\"10.5\" fill=\"{}\"{}>{}</text>",
        num(x), num(x), num(top), num(top + plot_height), kMuted, num(x + 4),
        num(top + 11 + 14 * static_cast<double>(g)), kMuted, kHalo,
        escape_html(spec.guides[g].label));
  }

  // Lines, then points and their labels (kept apart from one another).
  for (const auto& series : spec.series) {
    if (!series.line || series.x.size() < 2) continue;
    std::string path;
    for (size_t i = 0; i < series.x.size() && i < series.y.size(); ++i)
      path +=
          fmt::format("{}{} {}", i == 0 ? "M" : "L", num(px(series.x[i])), num(py(series.y[i])));
    svg += fmt::format(
        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-opacity=\"{}\" "
        "stroke-linejoin=\"round\" stroke-linecap=\"round\"{}>{}</path>",
        path, series.color, num(series.stroke_width), fmt::format("{:.2f}", series.opacity),
        series.dashed ? " stroke-dasharray=\"5 4\"" : "", title_element(series.tooltip));
  }
  struct Placed {
    double x, y, w;
  };
  std::vector<Placed> placed;
  for (const auto& series : spec.series) {
    if (!series.points) continue;
    for (size_t i = 0; i < series.x.size() && i < series.y.size(); ++i) {
      if (!std::isfinite(series.y[i])) continue;
      const double x = px(series.x[i]), y = py(series.y[i]);
      svg += fmt::format(
          "<circle cx=\"{}\" cy=\"{}\" r=\"4\" fill=\"{}\" stroke=\"#fff\" "
          "stroke-width=\"1.2\">{}</circle>",
          num(x), num(y), series.color,
          title_element(i < series.point_tooltips.size() ? series.point_tooltips[i] : ""));
      if (i >= series.point_labels.size() || series.point_labels[i].empty()) continue;
      const std::string& label = series.point_labels[i];
      const double w = text_width(label, 6.2);
      const bool to_left = x + 8 + w > width - 2;
      const double lx = to_left ? x - 8 - w : x + 8;
      double ly = y;
      for (int attempt = 0; attempt < 12; ++attempt) {
        const bool clash = std::any_of(placed.begin(), placed.end(), [&](const Placed& other) {
          return std::fabs(other.y - ly) < 12 && lx < other.x + other.w && other.x < lx + w;
        });
        if (!clash) break;
        ly += 12;
      }
      placed.push_back({lx, ly, w});
      svg += fmt::format(
          "<text x=\"{}\" y=\"{}\" dominant-baseline=\"central\" font-size=\"10.5\" "
          "font-weight=\"600\" fill=\"{}\"{}>{}</text>",
          num(lx), num(ly), kInk, kHalo, escape_html(label));
    }
  }
  svg += "</svg>";
  return svg;
}

}  // namespace moeslice
