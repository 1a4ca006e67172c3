// The report's sections, from data to HTML (see report_builder.h). Figures come from
// svg_charts, numbers from usage_stats; this file decides what to show and how to word it.
#include "report/report_builder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include <fmt/core.h>

#include "common/error.h"
#include "profile/layer_stats.h"
#include "report/html_writer.h"
#include "report/svg_charts.h"
#include "report/usage_stats.h"

namespace moeslice {
namespace {

using nlohmann::json;

constexpr const char* kDash = "\u2013";
// Categorical colours for the methods in the comparison charts.
constexpr const char* kPalette[] = {"#3b5bdb", "#e8590c", "#2f9e44", "#c2255c",
                                    "#7048e8", "#1098ad", "#f08c00", "#495057"};
constexpr const char* kInkColor = "#1d2330";
constexpr const char* kLayerColor = "#3b5bdb";
constexpr int kContentWidth = 1136;

std::optional<double> number_at(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::string string_at(const json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string plural(int64_t count, const char* singular, const char* plural_form) {
  return fmt::format("{} {}", count, count == 1 ? singular : plural_form);
}

// ---- Header ------------------------------------------------------------------------------

std::string model_name(const UsageProfile& profile) {
  const std::string model = string_at(profile.info, "model");
  if (model.empty()) return {};
  std::filesystem::path path(model);
  const std::string name = path.filename().string();
  return name.empty() ? path.parent_path().filename().string() : name;
}

std::string header_section(const ReportInputs& inputs, const UsageOverview& overview) {
  const UsageProfile& profile = inputs.profile;
  const std::string name = model_name(profile);
  const std::string title = !inputs.title.empty() ? inputs.title
                            : name.empty()        ? std::string("Expert usage report")
                                                  : "Expert usage of " + name;
  std::string html = "<header class=\"report\">\n<div class=\"kicker\">moeslice report</div>\n";
  html += "<h1>" + escape_html(title) + "</h1>\n";

  const auto fact = [](const std::string& term, const std::string& value,
                       const std::string& unit = "") {
    return "<div><dt>" + escape_html(term) + "</dt><dd>" + escape_html(value) +
           (unit.empty() ? "" : "<span class=\"unit\">" + escape_html(unit) + "</span>") +
           "</dd></div>";
  };
  html += "<dl class=\"facts\">";
  const std::string family = string_at(profile.info, "family");
  html += fact("Family", family.empty() ? kDash : family);
  html +=
      fact("MoE layers", fmt::format("{} of {}", overview.expert_layers.size(), profile.layers));
  html += fact(overview.shared_experts > 0 ? "Experts + shared" : "Experts",
               overview.shared_experts > 0
                   ? fmt::format("{}+{}", overview.routed_experts, overview.shared_experts)
                   : std::to_string(overview.routed_experts),
               " / layer");
  const auto top_k = number_at(profile.info, "top_k");
  html += fact("Top-k", top_k ? fmt::format("{}", static_cast<int64_t>(*top_k)) : kDash);
  html += fact("Documents", format_count(static_cast<double>(profile.document_count())));
  html += fact("Tokens", format_count(static_cast<double>(overview.total_tokens)));
  html += fact("Domains", overview.domains.empty() ? std::string("none")
                                                   : std::to_string(overview.domains.size()));
  html += fact("Plans", std::to_string(inputs.plans.size()));
  html += "</dl>\n";

  html += "<dl class=\"sources\">";
  const auto source = [](const std::string& term, const std::string& value) {
    return "<dt>" + escape_html(term) + "</dt><dd class=\"path mono\">" + escape_html(value) +
           "</dd>";
  };
  const std::string model = string_at(profile.info, "model");
  if (!model.empty()) html += source("model", model);
  const auto sources = profile.info.find("sources");
  if (sources != profile.info.end() && sources->is_array()) {
    for (const auto& entry : *sources) {
      const std::string corpus = string_at(entry, "corpus");
      const auto documents = number_at(entry, "documents");
      if (corpus.empty()) continue;
      html += source("corpus", documents ? fmt::format("{} ({} documents)", corpus,
                                                       static_cast<int64_t>(*documents))
                                         : corpus);
    }
  }
  html += source("usage", inputs.usage_path);
  for (const auto& plan : inputs.plans) html += source("plan", plan.path);
  if (inputs.comparison) html += source("comparison", inputs.comparison_path);
  html += "</dl>\n";
  html +=
      "<nav class=\"toc\"><a href=\"#usage\">Expert usage</a><a href=\"#coverage\">Coverage</a>"
      "<a href=\"#plans\">Kept experts</a><a href=\"#domains\">Domain overlap</a>"
      "<a href=\"#compare\">Sliced vs full</a></nav>\n";
  html += "</header>\n";
  return html;
}

// ---- Usage heatmaps --------------------------------------------------------------------------

double max_finite(const std::vector<double>& values) {
  double most = 0;
  for (const double value : values)
    if (std::isfinite(value)) most = std::max(most, value);
  return most;
}

// Where the usage colour scale tops out: the 99th percentile of the finite values (the maximum
// for small maps), so that one very hot expert does not wash out every other cell.
double colour_cap(const std::vector<std::vector<double>>& maps) {
  std::vector<double> values;
  for (const auto& map : maps)
    for (const double value : map)
      if (std::isfinite(value)) values.push_back(value);
  if (values.empty()) return 1;
  std::sort(values.begin(), values.end());
  const double top = values.back();
  if (values.size() < 200) return top > 0 ? top : 1;
  const double cap = values[static_cast<size_t>(0.99 * static_cast<double>(values.size() - 1))];
  return cap > 0 ? cap : (top > 0 ? top : 1);
}

// `max_width` bounds the figure; cells get hover tooltips unless there are more than
// `max_tooltips` of them (big per-domain maps would otherwise make the page several MB).
std::string usage_heatmap(const std::vector<double>& shares, const UsageOverview& overview,
                          int64_t experts, const ReportPlan* plan, int max_width, double value_max,
                          size_t max_tooltips) {
  HeatmapSpec spec;
  spec.rows = static_cast<int64_t>(overview.expert_layers.size());
  spec.columns = experts;
  spec.values = shares;
  spec.row_title = "layer";
  spec.column_title = "expert";
  spec.value_min = 0;
  spec.value_max = value_max > 0 ? value_max : 1;
  spec.cell_width =
      std::clamp(static_cast<int>((max_width - 60) / std::max<int64_t>(experts, 1)), 2, 40);
  spec.cell_height = std::clamp(spec.cell_width, 7, 20);
  spec.na_tooltip = "shared expert (always on, not routed)";
  for (const int64_t layer : overview.expert_layers)
    spec.row_labels.push_back(std::to_string(layer));
  for (int64_t e = 0; e < experts; ++e) spec.column_labels.push_back(std::to_string(e));
  const bool tooltips = shares.size() <= max_tooltips;
  if (tooltips) spec.tooltips.resize(shares.size());
  if (plan != nullptr) spec.marked.assign(shares.size(), 0);
  for (int64_t row = 0; row < spec.rows; ++row) {
    const int64_t layer = overview.expert_layers[static_cast<size_t>(row)];
    const auto& kept = plan != nullptr ? plan->kept[static_cast<size_t>(layer)]
                                       : std::optional<std::vector<int32_t>>();
    for (int64_t e = 0; e < experts; ++e) {
      const size_t i = static_cast<size_t>(row * experts + e);
      const bool is_kept =
          kept && std::binary_search(kept->begin(), kept->end(), static_cast<int32_t>(e));
      if (is_kept) spec.marked[i] = 1;
      if (tooltips)
        spec.tooltips[i] = fmt::format("layer {}, expert {}: {} of routed mass{}", layer, e,
                                       format_percent(shares[i], 2), is_kept ? " (kept)" : "");
    }
  }
  return render_heatmap(spec);
}

std::string usage_legend(double value_max, double true_max, const UsageOverview& overview,
                         const ReportPlan* plan, const std::string& id) {
  ColorLegendSpec legend;
  legend.value_max = value_max > 0 ? value_max : 1;
  legend.title = "share of the layer's routed mass";
  if (true_max > legend.value_max * 1.0001)
    legend.note = fmt::format("brightest from {} up (max {})", format_percent(legend.value_max, 1),
                              format_percent(true_max, 1));
  legend.gradient_id = id;
  const double uniform = 1.0 / static_cast<double>(std::max<int64_t>(overview.routed_experts, 1));
  if (uniform <= legend.value_max) legend.markers.push_back({uniform, "uniform 1/E"});
  if (plan != nullptr) legend.dot_label = "kept by " + plan->label;
  return render_color_legend(legend);
}

std::string usage_section(const ReportInputs& inputs, const UsageOverview& overview,
                          const std::vector<double>& shares) {
  const UsageProfile& profile = inputs.profile;
  const ReportPlan* plan = inputs.plans.empty() ? nullptr : &inputs.plans.front();
  std::string html = "<section id=\"usage\">\n<h2>Expert usage</h2>\n";
  html += fmt::format(
      "<p class=\"lead\">Each row is a MoE layer, each cell an expert; the colour is the expert's "
      "share of the router probability mass the layer hands out over all {} ({} tokens). A layer "
      "that spreads its tokens evenly sits at 1/E = {}; bright cells are the experts this corpus "
      "relies on.{}</p>\n",
      plural(profile.document_count(), "document", "documents"),
      format_count(static_cast<double>(overview.total_tokens)),
      format_percent(1.0 / static_cast<double>(std::max<int64_t>(overview.routed_experts, 1)), 2),
      (overview.shared_experts > 0
           ? " Grey columns are shared experts, which every token uses (they are not routed)."
           : "") +
          (plan != nullptr
               ? " Dots mark the experts the first plan (" + escape_html(plan->label) + ") keeps."
               : std::string()));
  if (overview.expert_layers.empty()) {
    html += "<p class=\"empty\">The profile has no layer with experts.</p>\n</section>\n";
    return html;
  }
  const double value_max = colour_cap({shares});
  html +=
      "<figure>" +
      usage_heatmap(shares, overview, profile.experts, plan, kContentWidth, value_max, SIZE_MAX) +
      usage_legend(value_max, max_finite(shares), overview, plan, "legend-usage") + "</figure>\n";

  if (!overview.domains.empty()) {
    html += "<h3>By domain</h3>\n";
    html +=
        "<p class=\"note\">The same view for the documents of each domain, on one colour scale "
        "shared by all domains (shown below them).</p>\n<div class=\"grid\">\n";
    std::vector<std::vector<double>> per_domain;
    double domain_max = 0;
    for (const auto& domain : overview.domains) {
      per_domain.push_back(mass_shares(profile, overview, select_documents(profile, domain)));
      domain_max = std::max(domain_max, max_finite(per_domain.back()));
    }
    const double domain_cap = colour_cap(per_domain);
    for (size_t d = 0; d < overview.domains.size(); ++d) {
      const auto selected = select_documents(profile, overview.domains[d]);
      const int64_t documents = static_cast<int64_t>(selected.size());
      int64_t tokens = 0;
      for (const int64_t i : selected) tokens += profile.tokens[static_cast<size_t>(i)];
      html += fmt::format(
          "<figure><div class=\"figtitle\">{} <span class=\"sub\">&middot; {} &middot; {} "
          "tokens</span></div>{}</figure>\n",
          escape_html(overview.domains[d]), plural(documents, "document", "documents"),
          format_count(static_cast<double>(tokens)),
          usage_heatmap(per_domain[d], overview, profile.experts, plan, 540, domain_cap, 4096));
    }
    html += "</div>\n<figure>" +
            usage_legend(domain_cap, domain_max, overview, plan, "legend-domains") + "</figure>\n";
  }
  html += "</section>\n";
  return html;
}

// ---- Coverage curves -------------------------------------------------------------------------

std::vector<double> expert_ticks(int64_t routed) {
  static constexpr int64_t kSteps[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  int64_t step = 1024;
  for (const int64_t candidate : kSteps)
    if (routed / candidate <= 8) {
      step = candidate;
      break;
    }
  std::vector<double> ticks;
  for (int64_t k = 0; k <= routed; k += step) ticks.push_back(static_cast<double>(k));
  return ticks;
}

std::string coverage_section(const UsageOverview& overview, const std::vector<double>& shares,
                             int64_t experts) {
  std::string html = "<section id=\"coverage\">\n<h2>Coverage</h2>\n";
  html +=
      "<p class=\"lead\">How much of each layer's routed mass its most used experts hold: sort a "
      "layer's experts by mass and add them up. Light lines are single layers, the bold line is "
      "their mean, the dashed diagonal is a layer that uses every expert equally. The steeper the "
      "start, the more a small slice can keep.</p>\n";
  const auto curves = coverage_curves(shares, overview, experts);
  if (curves.empty() || overview.routed_experts == 0) {
    html += "<p class=\"empty\">No layer with experts.</p>\n</section>\n";
    return html;
  }
  const int64_t routed = overview.routed_experts;
  LineChartSpec chart;
  chart.width = 820;
  chart.height = 380;
  chart.x_min = 0;
  chart.x_max = static_cast<double>(routed);
  chart.y_min = 0;
  chart.y_max = 1;
  chart.y_percent = true;
  chart.x_title = "experts kept per layer (most used first)";
  chart.y_title = "share of routed mass kept";
  chart.x_ticks = expert_ticks(routed);
  std::vector<double> ks(static_cast<size_t>(routed + 1));
  for (int64_t k = 0; k <= routed; ++k) ks[static_cast<size_t>(k)] = static_cast<double>(k);

  ChartSeries uniform;
  uniform.x = {0, static_cast<double>(routed)};
  uniform.y = {0, 1};
  uniform.color = "#8a94a3";
  uniform.dashed = true;
  uniform.stroke_width = 1.2;
  uniform.name = "uniform use";
  chart.series.push_back(uniform);
  std::vector<double> mean(ks.size(), 0.0);
  for (size_t row = 0; row < curves.size(); ++row) {
    ChartSeries layer;
    layer.x = ks;
    layer.y = curves[row];
    layer.color = kLayerColor;
    layer.stroke_width = 1.1;
    layer.opacity = curves.size() > 24 ? 0.22 : 0.35;
    layer.tooltip = fmt::format("layer {}", overview.expert_layers[row]);
    if (row == 0) layer.name = "one layer";
    chart.series.push_back(layer);
    for (size_t k = 0; k < mean.size(); ++k) mean[k] += curves[row][k];
  }
  for (double& value : mean) value /= static_cast<double>(curves.size());
  ChartSeries mean_line;
  mean_line.x = ks;
  mean_line.y = mean;
  mean_line.color = kInkColor;
  mean_line.stroke_width = 2.6;
  mean_line.name = fmt::format("mean of {} layers", curves.size());
  mean_line.tooltip = "mean over layers";
  chart.series.push_back(mean_line);

  ChartSeries marks;
  marks.line = false;
  marks.points = true;
  marks.color = kInkColor;
  std::string summary;
  for (const double fraction : {0.125, 0.25}) {
    const int64_t k = experts_for_fraction(routed, fraction);
    const auto& label = fraction == 0.125 ? "12.5%" : "25%";
    chart.guides.push_back({static_cast<double>(k), fmt::format("{} of E (k={})", label, k)});
    const double value = mean[static_cast<size_t>(k)];
    marks.x.push_back(static_cast<double>(k));
    marks.y.push_back(value);
    marks.point_labels.push_back(format_percent(value, 1));
    double low = 1, high = 0;
    int64_t low_layer = 0;
    for (size_t row = 0; row < curves.size(); ++row) {
      const double layer_value = curves[row][static_cast<size_t>(k)];
      if (layer_value < low) {
        low = layer_value;
        low_layer = overview.expert_layers[row];
      }
      high = std::max(high, layer_value);
    }
    marks.point_tooltips.push_back(fmt::format("top {} experts: mean {} (layers {}{}{})", k,
                                               format_percent(value, 1), format_percent(low, 1),
                                               kDash, format_percent(high, 1)));
    summary += fmt::format(
        "<div><div class=\"muted\">top {} of experts ({} per layer)</div><div class=\"big\">{}"
        "</div><div class=\"muted\">of the routed mass on average; layers range from {} "
        "(layer {}) to {}</div></div>",
        label, k, format_percent(value, 1), format_percent(low, 1), low_layer,
        format_percent(high, 1));
  }
  chart.series.push_back(marks);
  html += "<div class=\"figrow\"><figure>" + render_line_chart(chart) +
          "</figure><div class=\"aside\">" + summary + "</div></div>\n</section>\n";
  return html;
}

// ---- Kept experts ----------------------------------------------------------------------------

std::string plan_card(const ReportPlan& plan, const UsageOverview& overview,
                      const std::vector<double>& shares, int64_t experts) {
  const auto curves = coverage_curves(shares, overview, experts);
  std::string html = "<div class=\"plan\">\n<h3>" + escape_html(plan.label) + "</h3>\n";
  std::vector<std::string> meta;
  for (const char* key : {"pruning_method", "metric"}) {
    const std::string value = string_at(plan.document, key);
    if (!value.empty()) meta.push_back(fmt::format("{}: {}", key, value));
  }
  const auto keep_k = number_at(plan.document, "prune_keep_k");
  if (keep_k) meta.push_back(fmt::format("prune_keep_k: {}", static_cast<int64_t>(*keep_k)));
  std::string meta_text;
  for (const auto& part : meta) meta_text += (meta_text.empty() ? "" : " \u00b7 ") + part;
  if (plan.path != plan.label)
    html += "<div class=\"path mono\">" + escape_html(plan.path) + "</div>\n";
  if (!meta_text.empty()) html += "<div class=\"muted\">" + escape_html(meta_text) + "</div>\n";

  std::string rows;
  double sum = 0;
  int64_t restricted = 0, kept_total = 0;
  double lowest = 2;
  int64_t lowest_layer = -1;
  for (size_t row = 0; row < overview.expert_layers.size(); ++row) {
    const int64_t layer = overview.expert_layers[row];
    const auto& kept = plan.kept[static_cast<size_t>(layer)];
    if (!kept) {
      rows += fmt::format(
          "<tr><td>{}</td><td>{}</td><td class=\"l\">100%</td><td>{}</td><td class=\"ids "
          "muted\">all (unrestricted)</td></tr>",
          layer, experts, kDash);
      continue;
    }
    const double share = kept_share(shares, static_cast<int64_t>(row), experts, *kept);
    std::vector<int32_t> routed_kept;
    for (const int32_t id : *kept)
      if (id < overview.routed_experts) routed_kept.push_back(id);
    const double best = curves[row][routed_kept.size()];
    sum += share;
    ++restricted;
    kept_total += static_cast<int64_t>(kept->size());
    if (share < lowest) {
      lowest = share;
      lowest_layer = layer;
    }
    rows += fmt::format(
        "<tr><td>{}</td><td>{}</td><td class=\"l\"><span class=\"bar\" style=\"width:{}px\">"
        "</span>{}</td><td>{}</td><td class=\"ids\">{}</td></tr>",
        layer, kept->size(), static_cast<int>(std::lround(share * 80)), format_percent(share, 1),
        format_percent(best, 1), escape_html(compact_ids(*kept)));
  }
  if (restricted > 0)
    html += fmt::format(
        "<p class=\"note\">Restricts {} of {} MoE layers, {} experts kept per restricted layer on "
        "average. They hold <b>{}</b> of the profile's routed mass on average (lowest: layer {}, "
        "{}). &ldquo;Best&rdquo; is what the same number of most used experts would hold.</p>\n",
        restricted, overview.expert_layers.size(),
        kept_total % restricted == 0
            ? std::to_string(kept_total / restricted)
            : format_fixed(static_cast<double>(kept_total) / static_cast<double>(restricted), 1),
        format_percent(sum / static_cast<double>(restricted), 1), lowest_layer,
        format_percent(lowest, 1));
  else
    html += "<p class=\"note\">The plan restricts no layer.</p>\n";
  html +=
      "<div class=\"table-wrap\"><table><thead><tr><th>Layer</th><th>Kept</th><th "
      "class=\"l\">Mass kept</th><th>Best</th><th class=\"l\">Expert ids</th></tr></thead><tbody>" +
      rows + "</tbody></table></div>\n</div>\n";
  return html;
}

std::string plans_section(const ReportInputs& inputs, const UsageOverview& overview,
                          const std::vector<double>& shares) {
  std::string html = "<section id=\"plans\">\n<h2>Kept experts</h2>\n";
  if (inputs.plans.empty()) {
    html += "<p class=\"empty\">No plan given (add <code>--plan P.json</code>).</p>\n</section>\n";
    return html;
  }
  html +=
      "<p class=\"lead\">For each plan, the experts it keeps in every MoE layer (runs of "
      "consecutive ids are collapsed) and the share of this profile's routed mass they hold.</p>\n";
  for (const auto& plan : inputs.plans)
    html += plan_card(plan, overview, shares, inputs.profile.experts);
  html += "</section>\n";
  return html;
}

// ---- Domain overlap --------------------------------------------------------------------------

std::string domains_section(const ReportInputs& inputs, const UsageOverview& overview) {
  std::string html = "<section id=\"domains\">\n<h2>Domain overlap</h2>\n";
  const int64_t top = experts_for_fraction(overview.routed_experts, 0.25);
  if (overview.domains.size() < 2) {
    html += overview.domains.empty()
                ? "<p class=\"empty\">The profile's documents carry no domain labels, so there is "
                  "nothing to compare.</p>\n"
                : "<p class=\"empty\">All documents belong to one domain (" +
                      escape_html(overview.domains.front()) + ").</p>\n";
    html += "</section>\n";
    return html;
  }
  html += fmt::format(
      "<p class=\"lead\">How much the experts different domains rely on overlap. For each domain "
      "and layer take the top 25% of experts by routed mass ({} of {}); a cell is the Jaccard "
      "overlap |A&cap;B| / |A&cup;B| of two domains' sets, averaged over the {} MoE layers. 1 "
      "means "
      "the same experts, 0 disjoint ones; two random sets of this size would overlap by about "
      "{}.</p>\n",
      top, overview.routed_experts, overview.expert_layers.size(),
      format_fixed(static_cast<double>(top) / (2.0 * static_cast<double>(overview.routed_experts) -
                                               static_cast<double>(top)),
                   2));
  const auto overlap = domain_overlap(inputs.profile, overview, 0.25);
  const auto count = static_cast<int64_t>(overview.domains.size());
  HeatmapSpec spec;
  spec.rows = count;
  spec.columns = count;
  spec.values = overlap;
  for (int64_t d = 0; d < count; ++d) spec.values[static_cast<size_t>(d * count + d)] = NAN;
  spec.na_tooltip = "a domain with itself (1)";
  spec.row_labels = overview.domains;
  spec.column_labels = overview.domains;
  spec.rotate_column_labels = true;
  spec.show_values = count <= 16;
  spec.value_decimals = 2;
  spec.cell_width = std::clamp(static_cast<int>(520 / count), 22, 56);
  spec.cell_height = std::clamp(static_cast<int>(520 / count), 18, 36);
  for (int64_t a = 0; a < count; ++a)
    for (int64_t b = 0; b < count; ++b)
      spec.tooltips.push_back(
          fmt::format("{} vs {}: {} mean Jaccard overlap", overview.domains[static_cast<size_t>(a)],
                      overview.domains[static_cast<size_t>(b)],
                      format_fixed(overlap[static_cast<size_t>(a * count + b)], 3)));
  ColorLegendSpec legend;
  legend.percent = false;
  legend.title = "mean Jaccard overlap of top-25% experts";
  legend.gradient_id = "legend-overlap";
  legend.width = 200;
  legend.markers.push_back(
      {static_cast<double>(top) /
           (2.0 * static_cast<double>(overview.routed_experts) - static_cast<double>(top)),
       "random"});
  html += "<figure>" + render_heatmap(spec) + render_color_legend(legend) + "</figure>\n";
  html += "</section>\n";
  return html;
}

// ---- Comparison ------------------------------------------------------------------------------

enum class MetricKind { Perplexity, Fraction, Plain };

struct MetricColumn {
  Metric metric;
  const char* header;
  MetricKind kind;
  bool higher_is_better;
};

constexpr MetricColumn kMetricColumns[] = {
    {Metric::kPerplexity, "Perplexity", MetricKind::Perplexity, false},
    {Metric::kTop1Accuracy, "Top-1", MetricKind::Fraction, true},
    {Metric::kAcc, "acc", MetricKind::Fraction, true},
    {Metric::kAccNorm, "acc_norm", MetricKind::Fraction, true},
    {Metric::kKl, "KL", MetricKind::Plain, false},
    {Metric::kTop1Agreement, "Top-1 agreement", MetricKind::Fraction, true},
};

// A variant's value of `metric` over everything, or over one domain; nullopt when not recorded.
std::optional<double> metric_of(const ComparisonVariant& variant, Metric metric) {
  return variant.metrics ? variant.metrics->all[metric] : std::nullopt;
}

std::optional<double> domain_metric_of(const ComparisonVariant& variant, const std::string& domain,
                                       Metric metric) {
  if (!variant.metrics) return std::nullopt;
  const auto values = variant.metrics->domains.find(domain);
  return values != variant.metrics->domains.end() ? values->second[metric] : std::nullopt;
}

std::string metric_text(double value, MetricKind kind) {
  switch (kind) {
    case MetricKind::Perplexity:
      return value >= 100 ? format_fixed(value, 1) : format_fixed(value, 2);
    case MetricKind::Fraction:
      return format_percent(value, 1);
    case MetricKind::Plain:
      return format_significant(value, 3);
  }
  return {};
}

// "+0.80 (+6.5%)", coloured by whether the change is for the better; a NaN `rel_change` is left
// out.
std::string change_text(double abs_change, double rel_change, const MetricColumn& column) {
  const bool has_rel = std::isfinite(rel_change);
  const bool flat = has_rel ? std::fabs(rel_change) < 0.005 : std::fabs(abs_change) < 1e-4;
  const bool better = column.higher_is_better ? abs_change > 0 : abs_change < 0;
  const char* css = flat ? "flat" : better ? "good" : "bad";
  std::string text = column.kind == MetricKind::Fraction
                         ? format_signed(100 * abs_change, 1) + " pt"
                         : format_signed(abs_change, column.kind == MetricKind::Plain ? 3 : 2);
  if (has_rel) text += " (" + format_signed_percent(rel_change, 1) + ")";
  return fmt::format("<span class=\"chg {}\">{}</span>", css, escape_html(text));
}

// The change of `value` against `reference` (a NaN reference shows nothing).
std::string change_against(double value, double reference, const MetricColumn& column) {
  if (!std::isfinite(reference)) return {};
  return change_text(value - reference, reference != 0 ? value / reference - 1 : NAN, column);
}

const ComparisonVariant* full_variant(const std::vector<ComparisonVariant>& variants) {
  for (const auto& variant : variants)
    if (variant.kind == VariantKind::kFull) return &variant;
  return nullptr;
}

// "mass 25%" -> "mass": the label without its trailing words that hold a digit.
std::string label_stem(const std::string& label) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start <= label.size()) {
    const size_t end = std::min(label.find(' ', start), label.size());
    if (end > start) words.push_back(label.substr(start, end - start));
    start = end + 1;
  }
  while (!words.empty() && words.back().find_first_of("0123456789") != std::string::npos)
    words.pop_back();
  if (words.empty()) return label;
  std::string stem;
  for (const auto& word : words) stem += (stem.empty() ? "" : " ") + word;
  return stem;
}

std::string comparison_table(const std::vector<ComparisonVariant>& variants,
                             const ComparisonVariant* full) {
  std::vector<const MetricColumn*> columns;
  for (const auto& column : kMetricColumns)
    for (const auto& variant : variants)
      if (metric_of(variant, column.metric)) {
        columns.push_back(&column);
        break;
      }
  std::string html =
      "<div class=\"table-wrap\"><table><thead><tr><th class=\"l\">Variant</th><th>Experts "
      "kept / layer</th><th>Parameters</th><th>Size</th>";
  for (const auto* column : columns) html += "<th>" + escape_html(column->header) + "</th>";
  html += "</tr></thead><tbody>\n";
  for (const auto& variant : variants) {
    const bool is_full = &variant == full;
    html += is_full ? "<tr class=\"full\">" : "<tr>";
    html += "<td class=\"l\"><b>" + escape_html(variant.label) + "</b>";
    if (variant.plan && !variant.plan->empty())
      html += "<span class=\"chg muted mono\">" +
              escape_html(std::filesystem::path(*variant.plan).filename().string()) + "</span>";
    html += "</td>";
    html += "<td>" +
            (variant.experts_per_layer ? fmt::format("{}", *variant.experts_per_layer) : kDash);
    if (variant.fraction_kept)
      html += "<span class=\"chg muted\">" + format_percent(*variant.fraction_kept, 1) +
              " of experts</span>";
    html += "</td>";
    html += "<td>" +
            (variant.parameters ? format_count(static_cast<double>(*variant.parameters)) : kDash) +
            "</td>";
    html += "<td>" + (variant.bytes ? format_bytes(static_cast<double>(*variant.bytes)) : kDash) +
            "</td>";
    for (const auto* column : columns) {
      const auto value = metric_of(variant, column->metric);
      html += "<td>";
      if (!value) {
        html += std::string(kDash) + "</td>";
        continue;
      }
      html += escape_html(metric_text(*value, column->kind));
      const MetricChange* delta = nullptr;
      if (variant.change) {
        const auto found = variant.change->find(column->metric);
        if (found != variant.change->end()) delta = &found->second;
      }
      const double full_value =
          full != nullptr && !is_full ? metric_of(*full, column->metric).value_or(NAN) : NAN;
      if (delta != nullptr && delta->abs) {
        html += change_text(*delta->abs, delta->rel.value_or(NAN), *column);
      } else if (column->metric != Metric::kKl && column->metric != Metric::kTop1Agreement) {
        html += change_against(*value, full_value, *column);
      }
      html += "</td>";
    }
    html += "</tr>\n";
  }
  html += "</tbody></table></div>\n";
  return html;
}

std::string metric_chart(const std::vector<ComparisonVariant>& variants,
                         const ComparisonVariant* full, const MetricColumn& column,
                         const std::string& title) {
  struct Point {
    double x, y;
    std::string label;
  };
  std::vector<std::string> stems;
  std::map<std::string, std::vector<Point>> groups;
  double low = INFINITY, high = -INFINITY;
  std::optional<double> full_value;
  if (full != nullptr) full_value = metric_of(*full, column.metric);
  for (const auto& variant : variants) {
    if (&variant == full) continue;
    const auto fraction = variant.fraction_kept;
    const auto value = metric_of(variant, column.metric);
    if (!fraction || !value) continue;
    const std::string& label = variant.label;
    const std::string stem = label_stem(label);
    if (groups.find(stem) == groups.end()) stems.push_back(stem);
    groups[stem].push_back({*fraction, *value, label});
    low = std::min(low, *value);
    high = std::max(high, *value);
  }
  if (full_value) {
    low = std::min(low, *full_value);
    high = std::max(high, *full_value);
  }
  if (!std::isfinite(low)) return {};

  LineChartSpec chart;
  chart.width = 370;
  chart.height = 290;
  // Fractions on a log2 axis, so 12.5%, 25%, 50% and 100% are evenly spaced.
  double smallest = 1;
  for (const auto& [stem, points] : groups)
    for (const auto& point : points)
      if (point.x > 0) smallest = std::min(smallest, point.x);
  chart.x_log2 = true;
  const double lowest_tick = std::min(0.125, std::exp2(std::floor(std::log2(smallest) + 1e-9)));
  chart.x_min = lowest_tick / std::sqrt(2.0);  // half a step of room left of the first tick
  chart.x_max = 1;
  chart.x_percent = true;
  for (double tick = 1; tick >= lowest_tick * (1 - 1e-9); tick /= 2)
    chart.x_ticks.insert(chart.x_ticks.begin(), tick);
  chart.x_title = "fraction of experts kept (log scale)";
  chart.y_title = column.header;
  chart.y_percent = column.kind == MetricKind::Fraction;
  const double pad = high > low ? 0.08 * (high - low) : std::max(0.05 * std::fabs(high), 0.01);
  const auto ticks = nice_ticks(low - pad, high + pad, 5);
  const double step = ticks.size() >= 2 ? ticks[1] - ticks[0] : 2 * pad;
  chart.y_min = std::floor((low - pad) / step) * step;
  chart.y_max = std::ceil((high + pad) / step) * step;
  if (column.kind == MetricKind::Fraction) {
    chart.y_min = std::max(0.0, chart.y_min);
    chart.y_max = std::min(1.0, chart.y_max);
  } else if (column.kind == MetricKind::Perplexity) {
    chart.y_min = std::max(0.0, chart.y_min);
  }
  if (full_value) {
    ChartSeries reference;
    reference.x = {0, 1};
    reference.y = {*full_value, *full_value};
    reference.color = "#8a94a3";
    reference.dashed = true;
    reference.stroke_width = 1;
    chart.series.push_back(reference);
  }
  for (size_t g = 0; g < stems.size(); ++g) {
    auto points = groups[stems[g]];
    std::stable_sort(points.begin(), points.end(),
                     [](const Point& a, const Point& b) { return a.x < b.x; });
    ChartSeries series;
    series.name = stems[g];
    series.color = kPalette[g % std::size(kPalette)];
    series.points = true;
    series.stroke_width = 2;
    for (const auto& point : points) {
      series.x.push_back(point.x);
      series.y.push_back(point.y);
      series.point_tooltips.push_back(fmt::format("{}: {} at {} of experts", point.label,
                                                  metric_text(point.y, column.kind),
                                                  format_percent(point.x, 1)));
    }
    chart.series.push_back(series);
    if (full_value && points.back().x < 1) {
      ChartSeries to_full;
      to_full.x = {points.back().x, 1};
      to_full.y = {points.back().y, *full_value};
      to_full.color = series.color;
      to_full.stroke_width = 1.2;
      to_full.opacity = 0.5;
      to_full.dashed = true;
      chart.series.push_back(to_full);
    }
  }
  if (full_value) {
    ChartSeries full_point;
    full_point.x = {1};
    full_point.y = {*full_value};
    full_point.line = false;
    full_point.points = true;
    full_point.color = kInkColor;
    full_point.name = "full";
    full_point.point_tooltips = {"full: " + metric_text(*full_value, column.kind)};
    chart.series.push_back(full_point);
  }
  return "<figure><div class=\"figtitle\">" + escape_html(title) + "</div>" +
         render_line_chart(chart) + "</figure>\n";
}

std::string domain_table(const std::vector<ComparisonVariant>& variants,
                         const ComparisonVariant* full, const MetricColumn& column) {
  std::vector<std::string> domains;
  for (const auto& variant : variants) {
    if (!variant.metrics) continue;
    for (const auto& [domain, values] : variant.metrics->domains)
      if (values[column.metric] &&
          std::find(domains.begin(), domains.end(), domain) == domains.end())
        domains.push_back(domain);
  }
  if (domains.empty()) return {};
  std::sort(domains.begin(), domains.end());
  const auto domain_value = [&](const ComparisonVariant& variant, const std::string& domain) {
    return domain_metric_of(variant, domain, column.metric);
  };
  std::string html = fmt::format(
      "<h3>{} by domain</h3>\n<div class=\"table-wrap\"><table><thead><tr><th "
      "class=\"l\">Domain</th>",
      escape_html(column.header));
  for (const auto& variant : variants) html += "<th>" + escape_html(variant.label) + "</th>";
  html += "</tr></thead><tbody>\n";
  for (const auto& domain : domains) {
    html += "<tr><td class=\"l\"><b>" + escape_html(domain) + "</b></td>";
    const double reference = full != nullptr ? domain_value(*full, domain).value_or(NAN) : NAN;
    for (const auto& variant : variants) {
      const auto value = domain_value(variant, domain);
      html += "<td>";
      if (value) {
        html += escape_html(metric_text(*value, column.kind));
        if (&variant != full) html += change_against(*value, reference, column);
      } else {
        html += kDash;
      }
      html += "</td>";
    }
    html += "</tr>\n";
  }
  html += "</tbody></table></div>\n";
  return html;
}

std::string compare_section(const ReportInputs& inputs) {
  std::string html = "<section id=\"compare\">\n<h2>Sliced versus full</h2>\n";
  if (!inputs.comparison) {
    html +=
        "<p class=\"empty\">No comparison given (run <code>moeslice compare</code> and add "
        "<code>--compare C.json</code>).</p>\n</section>\n";
    return html;
  }
  const ComparisonDocument& comparison = *inputs.comparison;
  const std::vector<ComparisonVariant>& variants = comparison.variants;
  if (variants.empty()) {
    html += "<p class=\"empty\">The comparison has no variants.</p>\n</section>\n";
    return html;
  }
  const ComparisonVariant* full = full_variant(variants);
  std::string lead =
      "Each row is one model variant: the full model and the slices the plans stand for";
  const std::string& corpus = comparison.corpus;
  const std::string& tasks = comparison.tasks;
  const auto tokens = full != nullptr ? metric_of(*full, Metric::kTokens) : std::nullopt;
  const auto task_count = full != nullptr ? metric_of(*full, Metric::kTasks) : std::nullopt;
  if (!corpus.empty())
    lead += fmt::format(", evaluated on {}<span class=\"mono path\">{}</span>",
                        tokens ? format_count(*tokens) + " tokens of " : std::string(),
                        escape_html(corpus));
  if (!tasks.empty())
    lead += fmt::format(" and {}<span class=\"mono path\">{}</span>",
                        task_count ? format_count(*task_count) + " tasks of " : std::string(),
                        escape_html(tasks));
  lead +=
      ". Below each metric: its change against the full model (accuracies in percentage points), "
      "green when better, red when worse. KL is the mean KL divergence of the variant's "
      "next-token distribution from the full model's; top-1 agreement how often their most "
      "likely next token is the same.";
  html += "<p class=\"lead\">" + lead + "</p>\n";
  html += comparison_table(variants, full);

  std::string charts;
  for (const auto& column : kMetricColumns) {
    if (column.metric == Metric::kPerplexity)
      charts += metric_chart(variants, full, column, "Perplexity (lower is better)");
    else if (column.metric == Metric::kTop1Accuracy)
      charts += metric_chart(variants, full, column, "Next-token top-1 accuracy");
    else if (column.metric == Metric::kAcc)
      charts += metric_chart(variants, full, column, "Task accuracy (acc)");
  }
  if (!charts.empty()) {
    html += "<h3>Metrics against the fraction of experts kept</h3>\n";
    html +=
        "<p class=\"note\">One colour per method (the variant label without its size); the "
        "grey dashed line is the full model, which every method reaches at 100%.</p>\n";
    html += "<div class=\"grid three\">\n" + charts + "</div>\n";
  }
  for (const auto& column : kMetricColumns)
    if (column.metric == Metric::kPerplexity || column.metric == Metric::kAcc)
      html += domain_table(variants, full, column);
  html += "</section>\n";
  return html;
}

std::string footer(const ReportInputs& inputs) {
  return fmt::format(
      "<footer>Made by moeslice {} (<code>moeslice report</code>) from {}. A single "
      "self-contained file: no scripts, fonts or images are loaded. Hover over a cell or point for "
      "its value.</footer>\n",
      escape_html(inputs.version),
      escape_html(std::filesystem::path(inputs.usage_path).filename().string()));
}

}  // namespace

std::string build_report_html(const ReportInputs& inputs) {
  const UsageOverview overview = describe_usage(inputs.profile, inputs.usage_path);
  for (const auto& plan : inputs.plans)
    if (static_cast<int64_t>(plan.kept.size()) != inputs.profile.layers)
      throw InputError(fmt::format("{}: plan has {} layers, the usage profile {}", plan.path,
                                   plan.kept.size(), inputs.profile.layers));
  const std::vector<double> shares = mass_shares(inputs.profile, overview);
  const std::string name = model_name(inputs.profile);
  const std::string title = !inputs.title.empty() ? inputs.title
                            : name.empty()        ? std::string("moeslice report")
                                                  : "moeslice report: " + name;
  std::string body;
  body += header_section(inputs, overview);
  body += usage_section(inputs, overview, shares);
  body += coverage_section(overview, shares, inputs.profile.experts);
  body += plans_section(inputs, overview, shares);
  body += domains_section(inputs, overview);
  body += compare_section(inputs);
  body += footer(inputs);
  return html_page(title, body);
}

std::string build_report_from_files(const std::filesystem::path& usage,
                                    const std::vector<std::filesystem::path>& plans,
                                    const std::optional<std::filesystem::path>& comparison,
                                    const std::string& title) {
  ReportInputs inputs;
  inputs.title = title;
  inputs.usage_path = usage.string();
  inputs.profile = read_usage_profile(usage);
  const UsageOverview overview = describe_usage(inputs.profile, inputs.usage_path);
  for (const auto& plan : plans)
    inputs.plans.push_back(read_report_plan(plan, inputs.profile, overview.expert_layers));
  if (comparison) {
    inputs.comparison = read_comparison_file(*comparison);
    inputs.comparison_path = comparison->string();
  }
  return build_report_html(inputs);
}

}  // namespace moeslice
