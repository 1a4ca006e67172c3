// `moeslice report`: the page builds from a hand-made profile with domains, a plan and a
// comparison; it is self-contained (no network references, no external scripts or style
// sheets), escapes what it prints, has every section and is byte-for-byte deterministic; the
// numbers behind the figures are right; bad inputs are refused with typed errors naming the file.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "profile/usage_profile.h"
#include "report/html_writer.h"
#include "report/report_builder.h"
#include "report/report_inputs.h"
#include "report/svg_charts.h"
#include "report/usage_stats.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::check_mentions;
using test::TempDir;
using test::thrown_message;
using test::write_file;

constexpr int64_t kLayers = 4;  // layer 0 is dense
constexpr int64_t kExperts = 16;

// Three domains that prefer different experts (each around its own centre), with a shared core
// of experts 0 and 1 every domain uses.
UsageProfile sample_profile() {
  UsageProfile profile;
  profile.layers = kLayers;
  profile.experts = kExperts;
  profile.info = {{"family", "olmoe"},
                  {"model", "/models/olmoe <tiny> & co"},
                  {"expert_layers", {1, 2, 3}},
                  {"top_k", 2},
                  {"shared_experts", 0},
                  {"sources", {{{"corpus", "/data/corpus.jsonl"}, {"documents", 9}}}}};
  const std::vector<std::string> domains = {"code", "math", "prose <&>"};
  for (int d = 0; d < 9; ++d) {
    const size_t domain = static_cast<size_t>(d % 3);
    const int64_t doc = profile.add_document({"doc-" + std::to_string(d), domains[domain]});
    profile.tokens[static_cast<size_t>(doc)] = 100 + d;
    for (int64_t layer = 1; layer < kLayers; ++layer) {
      const double centre = static_cast<double>(4 + 4 * static_cast<int64_t>(domain) + layer);
      for (int64_t e = 0; e < kExperts; ++e) {
        const double distance = static_cast<double>(e) - centre;
        double mass = 0.5 + 20.0 * std::exp(-distance * distance / 3.0);
        if (e < 2) mass += 15.0;
        profile.mass[profile.index(doc, layer, e)] = static_cast<float>(mass);
        profile.counts[profile.index(doc, layer, e)] = static_cast<int32_t>(mass);
      }
    }
  }
  return profile;
}

json sample_plan() {
  json kept = json::array({nullptr});
  for (int64_t layer = 1; layer < kLayers; ++layer) kept.push_back({0, 1, 2, 5, 6, 7, 8, 12});
  return {{"experts_kept_per_layer", kept},
          {"pruning_method", "frequency"},
          {"metric", "mass"},
          {"prune_keep_k", 8},
          {"label", "mass <50%> & co"}};
}

json sample_comparison() {
  const json domains_full = {{"code", {{"perplexity", 8.1}, {"top1_accuracy", 0.5}}},
                             {"math", {{"perplexity", 9.4}, {"top1_accuracy", 0.45}}}};
  const json domains_half = {{"code", {{"perplexity", 8.6}, {"top1_accuracy", 0.48}}},
                             {"math", {{"perplexity", 11.0}, {"top1_accuracy", 0.40}}}};
  return {{"schema", 1},
          {"model", "/models/olmoe"},
          {"corpus", "/data/corpus.jsonl"},
          {"tasks", nullptr},
          {"variants",
           {{{"label", "full"},
             {"kind", "full"},
             {"experts_per_layer", 16},
             {"fraction_kept", 1.0},
             {"parameters", 6900000000LL},
             {"bytes", 13800000000LL},
             {"metrics",
              {{"perplexity", 12.3},
               {"top1_accuracy", 0.41},
               {"tokens", 51200},
               {"nll", 2.51},
               {"domains", domains_full}}}},
            {{"label", "mass <50%> & co"},
             {"kind", "plan"},
             {"plan", "/plans/p.json"},
             {"experts_per_layer", 8},
             {"fraction_kept", 0.5},
             {"parameters", 3600000000LL},
             {"bytes", 7200000000LL},
             {"metrics",
              {{"perplexity", 13.1},
               {"top1_accuracy", 0.39},
               {"kl", 0.12},
               {"top1_agreement", 0.91},
               {"domains", domains_half}}},
             {"change",
              {{"perplexity", {{"abs", 0.8}, {"rel", 0.065}}},
               {"top1_accuracy", {{"abs", -0.02}, {"rel", -0.049}}}}}},
            {{"label", "mass 25%"},
             {"kind", "plan"},
             {"experts_per_layer", 4},
             {"fraction_kept", 0.25},
             {"metrics", {{"perplexity", 15.0}, {"top1_accuracy", 0.35}}}}}}};
}

// The three inputs written to `dir`; returns their paths (usage, plan, comparison).
std::vector<fs::path> write_inputs(const TempDir& dir) {
  const fs::path usage = dir / "usage.safetensors";
  write_usage_profile(usage, sample_profile(), false);
  write_file(dir / "plan.json", sample_plan().dump());
  write_file(dir / "compare.json", sample_comparison().dump(2));
  return {usage, dir / "plan.json", dir / "compare.json"};
}

std::string build(const std::vector<fs::path>& paths) {
  return build_report_from_files(paths[0], {paths[1]}, paths[2], "");
}

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++count;
  return count;
}

TEST_CASE("the report is one self-contained, escaped, deterministic page with every section") {
  TempDir dir;
  const auto paths = write_inputs(dir);
  const std::string html = build(paths);

  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(html.find("</html>") != std::string::npos);
  // Nothing is loaded from anywhere.
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<script src") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(html.find("url(http") == std::string::npos);

  // Sections and figures.
  for (const char* id : {"id=\"usage\"", "id=\"coverage\"", "id=\"plans\"", "id=\"domains\"",
                         "id=\"compare\"", "<footer>"})
    CHECK_MESSAGE(html.find(id) != std::string::npos, id);
  CHECK(html.find("By domain") != std::string::npos);
  CHECK(occurrences(html, "class=\"heatmap\"") == 1 + 3 + 1);  // overall, 3 domains, overlap
  CHECK(occurrences(html, "class=\"chart\"") == 1 + 2);        // coverage, perplexity, top-1
  CHECK(html.find("12.5% of E (k=2)") != std::string::npos);
  CHECK(html.find("25% of E (k=4)") != std::string::npos);
  CHECK(html.find("moeslice " MOESLICE_VERSION) != std::string::npos);
  CHECK(html.find("olmoe") != std::string::npos);
  // The plan's kept ids, compacted, and its metadata.
  CHECK(html.find("0\u20132, 5\u20138, 12") != std::string::npos);
  CHECK(html.find("pruning_method: frequency") != std::string::npos);
  // Comparison: values, changes, and the columns present in the file (no acc: no tasks).
  CHECK(html.find("13.10") != std::string::npos);
  CHECK(html.find("+0.80 (+6.5%)") != std::string::npos);
  CHECK(html.find("-2.0 pt (-4.9%)") != std::string::npos);
  CHECK(html.find("6.90B") != std::string::npos);
  CHECK(html.find("13.8 GB") != std::string::npos);
  CHECK(html.find("<th>acc</th>") == std::string::npos);
  CHECK(html.find("<th>KL</th>") != std::string::npos);
  CHECK(html.find("Perplexity by domain") != std::string::npos);

  // Labels from the inputs are escaped wherever they appear.
  CHECK(html.find("mass <50%>") == std::string::npos);
  CHECK(html.find("mass &lt;50%&gt; &amp; co") != std::string::npos);
  CHECK(html.find("prose <&>") == std::string::npos);
  CHECK(html.find("prose &lt;&amp;&gt;") != std::string::npos);
  CHECK(html.find("olmoe <tiny>") == std::string::npos);

  // Same inputs, same bytes.
  CHECK(build(paths) == html);
}

TEST_CASE("the page works without plans, comparison or domains") {
  TempDir dir;
  UsageProfile profile = sample_profile();
  for (auto& document : profile.documents) document.domain.clear();
  write_usage_profile(dir / "usage.safetensors", profile, false);
  const std::string html =
      build_report_from_files(dir / "usage.safetensors", {}, std::nullopt, "My <title>");
  CHECK(html.find("<title>My &lt;title&gt;</title>") != std::string::npos);
  CHECK(html.find("No plan given") != std::string::npos);
  CHECK(html.find("No comparison given") != std::string::npos);
  CHECK(html.find("carry no domain labels") != std::string::npos);
  CHECK(html.find("By domain") == std::string::npos);
  CHECK(occurrences(html, "class=\"heatmap\"") == 1);
}

TEST_CASE("usage numbers: shares, coverage, plan mass, domain overlap") {
  const UsageProfile profile = sample_profile();
  const UsageOverview overview = describe_usage(profile, "sample");
  CHECK(overview.expert_layers == std::vector<int64_t>{1, 2, 3});
  CHECK(overview.routed_experts == kExperts);
  CHECK(overview.domains == std::vector<std::string>{"code", "math", "prose <&>"});
  CHECK(overview.total_tokens == 9 * 100 + 36);

  const auto shares = mass_shares(profile, overview);
  REQUIRE(shares.size() == static_cast<size_t>(3 * kExperts));
  for (int64_t row = 0; row < 3; ++row) {
    double sum = 0;
    for (int64_t e = 0; e < kExperts; ++e) sum += shares[static_cast<size_t>(row * kExperts + e)];
    CHECK(sum == doctest::Approx(1.0));
  }
  const auto curves = coverage_curves(shares, overview, kExperts);
  REQUIRE(curves.size() == 3);
  for (const auto& curve : curves) {
    REQUIRE(curve.size() == static_cast<size_t>(kExperts + 1));
    CHECK(curve.front() == 0.0);
    CHECK(curve.back() == doctest::Approx(1.0));
    for (size_t k = 1; k < curve.size(); ++k) CHECK(curve[k] >= curve[k - 1]);
    // Concave: each added expert adds no more than the one before.
    for (size_t k = 2; k < curve.size(); ++k)
      CHECK(curve[k] - curve[k - 1] <= curve[k - 1] - curve[k - 2] + 1e-12);
  }
  // The top experts hold exactly what the coverage curve says.
  const auto top = top_experts(shares, 0, kExperts, kExperts, 4);
  CHECK(kept_share(shares, 0, kExperts, top) == doctest::Approx(curves[0][4]));

  // Overlap: symmetric, 1 on the diagonal, below 1 between domains that prefer other experts.
  const auto overlap = domain_overlap(profile, overview, 0.25);
  REQUIRE(overlap.size() == 9);
  for (size_t a = 0; a < 3; ++a) {
    CHECK(overlap[a * 3 + a] == doctest::Approx(1.0));
    for (size_t b = 0; b < 3; ++b) CHECK(overlap[a * 3 + b] == doctest::Approx(overlap[b * 3 + a]));
  }
  CHECK(overlap[0 * 3 + 2] < overlap[0 * 3 + 1] + 1e-12);  // code is closer to math than to prose
  CHECK(overlap[0 * 3 + 2] < 1.0);

  // Identical domains overlap fully; disjoint ones not at all.
  UsageProfile two;
  two.layers = 1;
  two.experts = 4;
  two.info = {{"expert_layers", {0}}};
  for (const char* domain : {"a", "b", "c"}) two.add_document({domain, domain});
  const float masses[3][4] = {{9, 1, 1, 1}, {8, 1, 1, 1}, {1, 1, 1, 9}};
  for (int64_t d = 0; d < 3; ++d) {
    two.tokens[static_cast<size_t>(d)] = 12;  // documents without tokens are not summed
    for (int64_t e = 0; e < 4; ++e) two.mass[two.index(d, 0, e)] = masses[d][e];
  }
  const auto small = domain_overlap(two, describe_usage(two, "two"), 0.25);
  CHECK(small[0 * 3 + 1] == doctest::Approx(1.0));
  CHECK(small[0 * 3 + 2] == doctest::Approx(0.0));
}

TEST_CASE("formatting helpers") {
  CHECK(escape_html("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
  CHECK(compact_ids({0, 1, 2, 5, 7, 8, 9, 12}) == "0\u20132, 5, 7\u20139, 12");
  CHECK(compact_ids({3, 4}) == "3, 4");
  CHECK(compact_ids({}).empty());
  CHECK(experts_for_fraction(64, 0.125) == 8);
  CHECK(experts_for_fraction(64, 0.25) == 16);
  CHECK(experts_for_fraction(8, 0.125) == 1);
  CHECK(experts_for_fraction(6, 0.25) == 2);
  CHECK(format_percent(0.2512) == "25.1%");
  CHECK(format_count(6.9e9) == "6.90B");
  CHECK(format_count(51200) == "51.2k");
  CHECK(format_count(950) == "950");
  CHECK(format_bytes(13.8e9) == "13.8 GB");
  CHECK(format_signed(0.8, 2) == "+0.80");
  CHECK(format_signed(-0.0001, 2) == "0.00");
  CHECK(format_signed_percent(-0.049) == "-4.9%");
  CHECK(css_color(viridis(0)) == "#440154");
  CHECK(css_color(viridis(1)) == "#fde725");
  CHECK(relative_luminance(viridis(1)) > relative_luminance(viridis(0)));
  CHECK(nice_ticks(0, 1, 4) == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
}

TEST_CASE("bad inputs are refused with typed errors naming the file") {
  TempDir dir;
  const auto paths = write_inputs(dir);
  const fs::path usage = paths[0];

  // Usage profile missing or not a usage profile.
  check_mentions(thrown_message<InputError>([&] {
                   build_report_from_files(dir / "missing.safetensors", {}, std::nullopt, "");
                 }),
                 {"missing.safetensors"});
  write_file(dir / "corrupt.safetensors", std::string("\x10\0\0\0\0\0\0\0{not json", 17));
  check_mentions(thrown_message<FormatError>([&] {
                   build_report_from_files(dir / "corrupt.safetensors", {}, std::nullopt, "");
                 }),
                 {"corrupt.safetensors"});

  // Plans: wrong layer count, bad ids, a list for a dense layer, not a plan, not JSON.
  const auto plan_error = [&](const std::string& name, const std::string& text) {
    write_file(dir / name, text);
    return thrown_message<InputError>(
        [&] { build_report_from_files(usage, {dir / name}, std::nullopt, ""); });
  };
  check_mentions(plan_error("short.json", R"({"experts_kept_per_layer": [null, [0], [1]]})"),
                 {"short.json", "one entry per layer", "(4)", "found 3"});
  check_mentions(
      plan_error("range.json", R"({"experts_kept_per_layer": [null, [0, 16], [1], [2]]})"),
      {"range.json", "layer 1", "out of range [0, 16)"});
  check_mentions(
      plan_error("order.json", R"({"experts_kept_per_layer": [null, [3, 1], [1], [2]]})"),
      {"order.json", "strictly ascending"});
  check_mentions(plan_error("dense.json", R"({"experts_kept_per_layer": [[0], [0], [1], [2]]})"),
                 {"dense.json", "layer 0 has no experts"});
  check_mentions(plan_error("empty.json", R"({"experts_kept_per_layer": [null, [], [1], [2]]})"),
                 {"empty.json", "keeps no experts"});
  write_file(dir / "notplan.json", R"([1, 2])");
  check_mentions(thrown_message<FormatError>([&] {
                   build_report_from_files(usage, {dir / "notplan.json"}, std::nullopt, "");
                 }),
                 {"notplan.json", "experts_kept_per_layer"});
  write_file(dir / "broken.json", R"({"experts_kept_per_layer": )");
  check_mentions(thrown_message<FormatError>([&] {
                   build_report_from_files(usage, {dir / "broken.json"}, std::nullopt, "");
                 }),
                 {"broken.json", "not valid JSON"});

  // Comparisons: not JSON, no variants, a variant without label, a metric that is not a number,
  // another schema.
  const auto compare_error = [&](const std::string& name, const std::string& text) {
    write_file(dir / name, text);
    return thrown_message<FormatError>([&] { build_report_from_files(usage, {}, dir / name, ""); });
  };
  check_mentions(compare_error("c1.json", "{\"variants\": ["), {"c1.json", "not valid JSON"});
  check_mentions(compare_error("c2.json", R"({"schema": 1})"), {"c2.json", "'variants' array"});
  check_mentions(compare_error("c3.json", R"({"variants": [{"kind": "full"}]})"),
                 {"c3.json", "variants[0]", "label"});
  check_mentions(
      compare_error("c4.json",
                    R"({"variants": [{"label": "x", "metrics": {"perplexity": "low"}}]})"),
      {"c4.json", "variants[0].metrics.perplexity", "number"});
  check_mentions(compare_error("c5.json", R"({"schema": 2, "variants": []})"),
                 {"c5.json", "schema 2"});
  check_mentions(
      compare_error(
          "c6.json",
          R"({"variants": [{"label": "x", "metrics": {"domains": {"code": {"acc": []}}}}]})"),
      {"c6.json", "domains.code.acc"});
  check_mentions(thrown_message<InputError>(
                     [&] { build_report_from_files(usage, {}, dir / "nope.json", ""); }),
                 {"nope.json", "does not exist"});
}

}  // namespace
}  // namespace moeslice
