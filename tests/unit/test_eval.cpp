// Language-model metrics on hand-made logits, and the evaluator on a random model: a variant
// compared with itself agrees fully, and a keep plan scores exactly what the sliced checkpoint
// scores.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "eval/comparison.h"
#include "eval/evaluator.h"
#include "model/random_checkpoint.h"
#include "slice/slicer.h"

using namespace moeslice;
namespace fs = std::filesystem;

namespace {

kernels::Matrix matrix(size_t rows, size_t cols, std::initializer_list<float> values) {
  kernels::Matrix m(rows, cols);
  size_t i = 0;
  for (float value : values) m.data()[i++] = value;
  return m;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("moeslice-test-eval-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("score_document scores every position after the first of each window") {
  // vocab 2; rows are log-probabilities up to a constant.
  const auto logits = matrix(4, 2, {0.0f, 0.0f, std::log(3.0f), 0.0f, 0.0f, 0.0f, 0.0f, 0.0f});
  const std::vector<int32_t> tokens = {1, 0, 1, 1};
  const std::vector<Window> one = {{0, 4}};
  const LmTotals all = score_document(logits, tokens, one);
  CHECK(all.tokens == 3);
  // p(0|row0)=1/2, p(1|row1)=1/4, p(1|row2)=1/2
  CHECK(all.nll == doctest::Approx(std::log(2.0) + std::log(4.0) + std::log(2.0)));
  CHECK(all.correct == 1);  // argmax is id 0 everywhere (ties: the first): right only at row 0
  const std::vector<Window> two = {{0, 2}, {2, 2}};
  const LmTotals split = score_document(logits, tokens, two);
  CHECK(split.tokens == 2);  // rows 0 and 2 only
  CHECK(split.nll == doctest::Approx(2 * std::log(2.0)));
  CHECK(all.perplexity() == doctest::Approx(std::exp(all.nll / 3)));
}

TEST_CASE("compare_logits: zero KL against itself, positive otherwise") {
  const auto p = matrix(2, 3, {1.0f, 2.0f, 3.0f, 0.5f, 0.5f, 0.0f});
  const auto q = matrix(2, 3, {3.0f, 2.0f, 1.0f, 0.5f, 0.5f, 0.0f});
  const std::vector<Window> windows = {{0, 2}};
  const AgreementTotals same = compare_logits(p, p, windows);
  CHECK(same.positions == 1);
  CHECK(same.mean_kl() == doctest::Approx(0.0));
  CHECK(same.top1_agreement() == 1.0);
  const AgreementTotals different = compare_logits(p, q, windows);
  CHECK(different.mean_kl() > 0.5);
  CHECK(different.top1_agreement() == 0.0);
}

TEST_CASE("a keep plan scores what the sliced checkpoint scores") {
  TempDir dir;
  RandomModelOptions options;
  options.family = "olmoe";
  options.seed = 11;
  write_random_checkpoint(options, dir.path / "full");
  const Model full = open_model(dir.path / "full");
  const nlohmann::json plan_json = {{"experts_kept_per_layer", {{0, 2, 5, 6}, {1, 3, 4, 7}}}};
  const KeepPlan plan = parse_keep_plan(plan_json, full.spec, "plan.json");
  slice_checkpoint(full, plan, plan_json, dir.path / "sliced", SliceOptions{});
  const Model sliced = open_model(dir.path / "sliced");

  std::mt19937 random(3);
  std::vector<EvalDocument> documents;
  for (int d = 0; d < 3; ++d) {
    EvalDocument document;
    document.id = "doc" + std::to_string(d);
    document.domain = d == 0 ? "code" : "prose";
    for (int t = 0; t < 20 + 7 * d; ++t)
      document.tokens.push_back(static_cast<int32_t>(random() % 256));
    documents.push_back(document);
  }
  McItem task;
  task.id = "t0";
  task.domain = "code";
  task.context = {1, 2, 3};
  task.choices = {{4, 5}, {6}, {7, 8, 9}};
  task.choice_bytes = {2, 1, 3};
  task.answer = 1;
  const std::vector<McItem> tasks = {task};
  std::vector<EvalVariant> variants(3);
  variants[0] = {"full", &full, std::nullopt};
  variants[1] = {"plan", &full, plan};
  variants[2] = {"sliced", &sliced, std::nullopt};
  const auto reports = evaluate_variants(variants, documents, tasks, EvalOptions{});
  REQUIRE(reports.size() == 3);
  CHECK(reports[1].corpus.tokens == reports[0].corpus.tokens);
  CHECK(reports[1].corpus.nll == doctest::Approx(reports[2].corpus.nll).epsilon(1e-6));
  CHECK(reports[1].corpus.correct == reports[2].corpus.correct);
  CHECK(reports[1].agreement.kl == doctest::Approx(reports[2].agreement.kl).epsilon(1e-5));
  CHECK(reports[1].tasks.correct == reports[2].tasks.correct);
  CHECK(reports[0].corpus_domains.at("prose").tokens == 26 + 33);

  const std::vector<VariantInfo> infos = {describe_full_model(full),
                                          describe_plan(full, plan, "plan.json"),
                                          describe_sliced_model(sliced, full, "sliced")};
  CHECK(infos[1].parameters == infos[2].parameters);
  CHECK(infos[1].fraction_kept == doctest::Approx(0.5));
  const ComparisonDocument comparison = build_comparison("full", "corpus", "", infos, reports);
  const auto json = comparison_json(comparison);
  CHECK(json["variants"][1]["metrics"].contains("kl"));
  CHECK(json["variants"][1]["change"].contains("perplexity"));
  CHECK(json["variants"][0]["metrics"]["domains"].contains("code"));
  CHECK(!comparison_table(comparison).empty());
}
