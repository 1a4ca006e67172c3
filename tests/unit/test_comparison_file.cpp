// The typed comparison file (eval/comparison_file.h) and metric summaries
// (eval/metric_summary.h): the metric name table, the exact bytes the writers produce, reading
// back what was written, the leniency towards hand-written files, and the reader's refusals.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>

#include "common/error.h"
#include "eval/comparison_file.h"
#include "eval/metric_summary.h"
#include "test_util.h"

namespace moeslice {
namespace {

using nlohmann::json;
using test::check_mentions;
using test::thrown_message;

MetricValues values(std::initializer_list<std::pair<Metric, double>> entries) {
  MetricValues out;
  for (const auto& [metric, value] : entries) out[metric] = value;
  return out;
}

// A variant with every size set, as compare writes it.
ComparisonVariant sized_variant(const std::string& label, VariantKind kind, int64_t experts,
                                double fraction, int64_t parameters, uint64_t bytes) {
  ComparisonVariant variant;
  variant.label = label;
  variant.kind = kind;
  variant.experts_per_layer = experts;
  variant.fraction_kept = fraction;
  variant.parameters = parameters;
  variant.bytes = bytes;
  return variant;
}

ComparisonDocument sample_document() {
  ComparisonDocument document;
  document.model = "/models/full";
  document.corpus = "/data/corpus.jsonl";
  ComparisonVariant full = sized_variant("full", VariantKind::kFull, 8, 1.0, 1500, 6000);
  full.metrics = MetricSummary{
      values({{Metric::kPerplexity, 12.5}, {Metric::kTokens, 40}, {Metric::kNll, 2.5}}),
      {{"code", values({{Metric::kPerplexity, 11.0}, {Metric::kTokens, 25}})}, {"empty", {}}}};
  ComparisonVariant plan = sized_variant("p", VariantKind::kPlan, 4, 0.5, 900, 3600);
  plan.source = "p.json";
  plan.metrics = MetricSummary{
      values({{Metric::kPerplexity, 15.0}, {Metric::kKl, 0.25}, {Metric::kTop1Agreement, 0.75}}),
      {}};
  plan.change = std::map<Metric, MetricChange>{{Metric::kPerplexity, {2.5, 0.2}}};
  document.variants = {full, plan};
  return document;
}

TEST_CASE("every metric has one name that reads back; counts and changes are marked") {
  for (const Metric metric : kAllMetrics) {
    CAPTURE(metric_name(metric));
    REQUIRE(metric_from_name(metric_name(metric)).has_value());
    CHECK(*metric_from_name(metric_name(metric)) == metric);
  }
  CHECK(metric_name(Metric::kTop1Accuracy) == "top1_accuracy");
  CHECK(metric_name(Metric::kAccNorm) == "acc_norm");
  CHECK_FALSE(metric_from_name("Perplexity").has_value());
  CHECK_FALSE(metric_from_name("domains").has_value());
  for (const Metric metric : kAllMetrics)
    CHECK(metric_is_count(metric) == (metric == Metric::kTokens || metric == Metric::kTasks));
  for (const Metric metric :
       {Metric::kPerplexity, Metric::kTop1Accuracy, Metric::kNll, Metric::kAcc, Metric::kAccNorm})
    CHECK(metric_has_change(metric));
  for (const Metric metric : {Metric::kTokens, Metric::kTasks, Metric::kKl, Metric::kTop1Agreement})
    CHECK_FALSE(metric_has_change(metric));
  CHECK(variant_kind_name(VariantKind::kSliced) == "sliced");
}

TEST_CASE("the writers' bytes: sorted keys, counts as integers, null for no tasks") {
  test::TempDir dir;
  write_comparison_file(dir / "c.json", sample_document(), false);
  CHECK(test::read_text(dir / "c.json") ==
        R"({
  "corpus": "/data/corpus.jsonl",
  "model": "/models/full",
  "schema": 1,
  "tasks": null,
  "variants": [
    {
      "bytes": 6000,
      "experts_per_layer": 8,
      "fraction_kept": 1.0,
      "kind": "full",
      "label": "full",
      "metrics": {
        "domains": {
          "code": {
            "perplexity": 11.0,
            "tokens": 25
          },
          "empty": {}
        },
        "nll": 2.5,
        "perplexity": 12.5,
        "tokens": 40
      },
      "parameters": 1500
    },
    {
      "bytes": 3600,
      "change": {
        "perplexity": {
          "abs": 2.5,
          "rel": 0.2
        }
      },
      "experts_per_layer": 4,
      "fraction_kept": 0.5,
      "kind": "plan",
      "label": "p",
      "metrics": {
        "domains": {},
        "kl": 0.25,
        "perplexity": 15.0,
        "top1_agreement": 0.75
      },
      "parameters": 900,
      "source": "p.json"
    }
  ]
}
)");
  write_metric_summary_file(dir / "e.json", *sample_document().variants[1].metrics, false);
  CHECK(test::read_text(dir / "e.json") ==
        "{\n  \"domains\": {},\n  \"kl\": 0.25,\n  \"perplexity\": 15.0,\n  \"top1_agreement\": "
        "0.75\n}\n");
  // Outputs are never replaced silently.
  check_mentions(thrown_message<InputError>(
                     [&] { write_comparison_file(dir / "c.json", sample_document(), false); }),
                 {"c.json", "already exists"});
}

TEST_CASE("what the writer wrote reads back as the same document") {
  test::TempDir dir;
  const ComparisonDocument written = sample_document();
  write_comparison_file(dir / "c.json", written, false);
  const ComparisonDocument read = read_comparison_file(dir / "c.json");
  CHECK(read.model == written.model);
  CHECK(read.corpus == written.corpus);
  CHECK(read.tasks.empty());
  REQUIRE(read.variants.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    const ComparisonVariant& a = written.variants[i];
    const ComparisonVariant& b = read.variants[i];
    CHECK(a.label == b.label);
    CHECK(a.kind == b.kind);
    CHECK(a.source == b.source);
    CHECK(a.experts_per_layer == b.experts_per_layer);
    CHECK(a.fraction_kept == b.fraction_kept);
    CHECK(a.parameters == b.parameters);
    CHECK(a.bytes == b.bytes);
    REQUIRE(b.metrics.has_value());
    CHECK(a.metrics->all.values == b.metrics->all.values);
    REQUIRE(a.metrics->domains.size() == b.metrics->domains.size());
    for (const auto& [domain, metrics] : a.metrics->domains)
      CHECK(b.metrics->domains.at(domain).values == metrics.values);
    CHECK(a.change.has_value() == b.change.has_value());
  }
  const MetricChange& change = read.variants[1].change->at(Metric::kPerplexity);
  CHECK(change.abs == 2.5);
  CHECK(change.rel == 0.2);
  CHECK(comparison_json(read) == comparison_json(written));
}

TEST_CASE("hand-written comparisons: what is there is read, what is unknown is passed over") {
  const json file = json::parse(R"({
    "model": null, "extra": [1],
    "variants": [
      {"label": "a", "kind": "other", "plan": "/plans/a.json", "experts_per_layer": 7.9,
       "parameters": 12e3, "bytes": -5, "fraction_kept": null, "source": 3,
       "metrics": {"perplexity": 20.5, "acc": null, "new_metric": 1,
                   "domains": {"x": {"tasks": 3, "domains": {"y": {"z": 1}}}}},
       "change": {"perplexity": {"rel": 0.5}, "new_metric": {"abs": 1}}},
      {"label": "b", "kind": null}
    ]})");
  const ComparisonDocument document = parse_comparison(file, "hand.json");
  CHECK(document.model.empty());
  CHECK(document.corpus.empty());
  REQUIRE(document.variants.size() == 2);
  const ComparisonVariant& a = document.variants[0];
  CHECK_FALSE(a.kind.has_value());  // a kind this version does not know
  CHECK(a.plan == "/plans/a.json");
  CHECK_FALSE(a.source.has_value());  // not a string
  CHECK(a.experts_per_layer == 7);    // truncated, as the report always showed it
  CHECK(a.parameters == 12000);
  CHECK(a.bytes == 0u);  // clamped to the type
  CHECK_FALSE(a.fraction_kept.has_value());
  REQUIRE(a.metrics.has_value());
  CHECK(a.metrics->all[Metric::kPerplexity] == 20.5);
  CHECK_FALSE(a.metrics->all[Metric::kAcc].has_value());
  CHECK(a.metrics->domains.at("x")[Metric::kTasks] == 3.0);
  REQUIRE(a.change.has_value());
  CHECK(a.change->size() == 1);
  CHECK_FALSE(a.change->at(Metric::kPerplexity).abs.has_value());
  CHECK(a.change->at(Metric::kPerplexity).rel == 0.5);
  const ComparisonVariant& b = document.variants[1];
  CHECK_FALSE(b.kind.has_value());
  CHECK_FALSE(b.metrics.has_value());
  CHECK_FALSE(b.change.has_value());
  CHECK_FALSE(b.bytes.has_value());
  // Large and real-valued sizes stay within the types.
  const ComparisonDocument huge = parse_comparison(
      json::parse(R"({"variants": [{"label": "h", "parameters": 1e300, "bytes": 2e19}]})"), "h");
  CHECK(huge.variants[0].parameters == std::numeric_limits<int64_t>::max());
  CHECK(huge.variants[0].bytes == std::numeric_limits<uint64_t>::max());
}

TEST_CASE("the reader refuses a file that is not a comparison, naming the file and the entry") {
  const auto refusal = [](const std::string& text) {
    return thrown_message<FormatError>([&] { parse_comparison(json::parse(text), "c.json"); });
  };
  check_mentions(refusal("[1]"), {"c.json", "not a comparison", "found array"});
  check_mentions(refusal(R"({"schema": 2, "variants": []})"),
                 {"c.json", "comparison schema 2, expected 1"});
  check_mentions(refusal(R"({"tasks": 3, "variants": []})"), {"'tasks' must be a string or null"});
  check_mentions(refusal(R"({"variants": {}})"), {"expected a 'variants' array"});
  check_mentions(refusal(R"({"variants": [{"label": "x"}, 2]})"),
                 {"variants[1] must be an object, found number"});
  check_mentions(refusal(R"({"variants": [{"label": 1}]})"),
                 {"variants[0] needs a string 'label'"});
  check_mentions(refusal(R"({"variants": [{"label": "x", "kind": []}]})"),
                 {"variants[0].kind must be a string, found array"});
  check_mentions(refusal(R"({"variants": [{"label": "x", "experts_per_layer": "8"}]})"),
                 {"variants[0].experts_per_layer must be a number, found string"});
  check_mentions(refusal(R"({"variants": [{"label": "x", "metrics": {"kl": "low"}}]})"),
                 {"variants[0].metrics.kl must be a number"});
  check_mentions(
      refusal(R"({"variants": [{"label": "x", "metrics": {"domains": {"d": {"acc": {}}}}}]})"),
      {"variants[0].metrics.domains.d.acc must be a number, found object"});
  check_mentions(refusal(R"({"variants": [{"label": "x", "change": 1}]})"),
                 {"variants[0].change must be an object, found number"});
  check_mentions(
      refusal(R"({"variants": [{"label": "x", "change": {"nll": {"abs": null, "rel": "?"}}}]})"),
      {"variants[0].change.nll.rel must be a number, found string"});
  test::TempDir dir;
  check_mentions(thrown_message<InputError>([&] { read_comparison_file(dir / "missing.json"); }),
                 {"missing.json", "does not exist"});
}

}  // namespace
}  // namespace moeslice
