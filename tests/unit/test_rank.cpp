// Ranking experts from hand-made usage profiles (every metric, weighting, domain filter, keep
// amounts, shared experts, ties, the nonuniform budget, refusals, the plan document), and
// select == the slow way (profile with the plan so far, rank the next layer) on random models.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "common/error.h"
#include "model/random_checkpoint.h"
#include "profile/profiler.h"
#include "rank/expert_ranking.h"
#include "rank/layerwise_select.h"
#include "rank/plan_file.h"
#include "test_util.h"

using namespace moeslice;
using moeslice::test::check_mentions;
using moeslice::test::thrown_message;

namespace {

using Ids = std::vector<int32_t>;

UsageProfile make_profile(const std::string& family, int64_t layers, int64_t experts, int64_t top_k,
                          int64_t shared, std::vector<int64_t> expert_layers) {
  UsageProfile profile;
  profile.layers = layers;
  profile.experts = experts;
  profile.info = {{"family", family},
                  {"model", "/models/tiny"},
                  {"layers", layers},
                  {"experts", experts},
                  {"top_k", top_k},
                  {"shared_experts", shared},
                  {"expert_layers", expert_layers},
                  {"max_seq", 64}};
  return profile;
}

// Adds a document whose layer `layer` has the given per-expert numbers.
int64_t add_document(UsageProfile& profile, const std::string& domain, int64_t tokens,
                     int64_t layer, std::vector<int32_t> counts, std::vector<float> mass,
                     std::vector<float> gate_norm) {
  const int64_t d =
      profile.add_document({"doc" + std::to_string(profile.document_count()), domain});
  profile.tokens[static_cast<size_t>(d)] = tokens;
  for (size_t e = 0; e < counts.size(); ++e) {
    const size_t i = profile.index(d, layer, static_cast<int64_t>(e));
    profile.counts[i] = counts[e];
    profile.mass[i] = mass[e];
    profile.gate_norm[i] = gate_norm[e];
  }
  return d;
}

RankOptions options_for(RankMetric metric, const std::string& keep) {
  RankOptions options;
  options.metric = metric;
  options.keep = parse_keep_amount(keep);
  return options;
}

const Ids& kept_in(const RankedPlan& plan, int64_t layer) {
  return plan.layers.at(static_cast<size_t>(layer)).value().kept;
}

// One layer, six experts, three documents whose numbers make every metric choose differently.
//   totals  counts [1, 6, 5, 4, 3, 0]   mass [5, 1, 3, .6, 2.1, 4]   gate_norm [1, 6, 20, 3, 10, 0]
//   reap = gate_norm / counts = [1, 1, 4, .75, 3.33, 0]; coverage = [1, 1, 1, 2, 2, 1] / 3
UsageProfile metric_profile() {
  UsageProfile profile = make_profile("olmoe", 1, 6, 2, 0, {0});
  add_document(profile, "code", 20, 0, {1, 6, 5, 0, 2, 0}, {5, 1, 3, 0, 2, 0},
               {1, 6, 20, 0, 10, 0});
  add_document(profile, "prose", 2, 0, {0, 0, 0, 3, 0, 1}, {0, 0, 0, 0.5f, 0, 4},
               {0, 0, 0, 3, 0, 0});
  add_document(profile, "code", 4, 0, {0, 0, 0, 1, 1, 0}, {0, 0, 0, 0.1f, 0.1f, 0},
               {0, 0, 0, 0, 0, 0});
  return profile;
}

}  // namespace

TEST_CASE("keep amounts: percentages round to the nearest count, shared experts included") {
  CHECK(resolve_keep_count(parse_keep_amount("25%"), 8, 0) == 2);
  CHECK(resolve_keep_count(parse_keep_amount("12.5%"), 128, 1) == 16);  // EMO: 15 routed + 1
  CHECK(resolve_keep_count(parse_keep_amount("25%"), 64, 0) == 16);
  CHECK(resolve_keep_count(parse_keep_amount("25%"), 10, 0) == 3);  // 2.5 rounds up
  CHECK(resolve_keep_count(parse_keep_amount("100%"), 8, 1) == 8);
  CHECK(resolve_keep_count(parse_keep_amount("16"), 128, 1) == 16);
  for (const char* bad : {"0%", "150%", "100.5%", "abc", "", "%", "2.5", "-3", "0", "1e2%", "12.%",
                          ".5%", "25 %", "1234567890123"}) {
    CAPTURE(bad);
    check_mentions(thrown_message<InputError>([&] { parse_keep_amount(bad); }),
                   {"keep amount", std::string("'") + bad + "'"});
  }
  check_mentions(
      thrown_message<InputError>([] { resolve_keep_count(parse_keep_amount("1"), 8, 1); }),
      {"keeps 1 of 8", "at least 2", "1 shared"});
  check_mentions(
      thrown_message<InputError>([] { resolve_keep_count(parse_keep_amount("5%"), 8, 0); }),
      {"keeps 0 of 8", "at least 1"});
  check_mentions(
      thrown_message<InputError>([] { resolve_keep_count(parse_keep_amount("9"), 8, 0); }),
      {"keeps 9 experts", "only 8"});
}

TEST_CASE("each metric ranks by its own statistic") {
  const UsageProfile profile = metric_profile();
  const auto rank = [&profile](RankMetric metric) {
    return rank_experts(profile, options_for(metric, "2"), "usage");
  };
  const RankedPlan mass = rank(RankMetric::kMass);
  CHECK(kept_in(mass, 0) == Ids{0, 5});
  const std::vector<double>& scores = mass.layers[0]->scores;
  CHECK(scores[0] == doctest::Approx(5));
  CHECK(scores[3] == doctest::Approx(0.6));
  CHECK(scores[4] == doctest::Approx(2.1));
  CHECK(kept_in(rank(RankMetric::kFreq), 0) == Ids{1, 2});
  const RankedPlan reap = rank(RankMetric::kReap);
  CHECK(kept_in(reap, 0) == Ids{2, 4});
  CHECK(reap.layers[0]->scores[3] == doctest::Approx(0.75));
  CHECK(reap.layers[0]->scores[5] == 0.0);  // never selected: no division by zero
  const RankedPlan coverage = rank(RankMetric::kCoverage);
  CHECK(kept_in(coverage, 0) == Ids{3, 4});
  CHECK(coverage.layers[0]->scores[3] == doctest::Approx(2.0 / 3));
  CHECK(coverage.layers[0]->scores[0] == doctest::Approx(1.0 / 3));

  // Shares of routed mass and selections kept (mass plan keeps 0 and 5).
  CHECK(*mass.layers[0]->kept_mass_share == doctest::Approx(9.0 / 15.7));
  CHECK(*mass.layers[0]->kept_count_share == doctest::Approx(0.1));
  CHECK(mass.method == "moeslice-rank-mass");
  CHECK(mass.documents == 3);
  CHECK(mass.tokens == 26);
}

TEST_CASE("random scores are seeded, in [0, 1), and per layer independent of the others") {
  const UsageProfile profile = metric_profile();
  RankOptions options = options_for(RankMetric::kRandom, "3");
  options.seed = 7;
  const RankedPlan a = rank_experts(profile, options, "usage");
  const RankedPlan b = rank_experts(profile, options, "usage");
  CHECK(a.layers[0]->scores == b.layers[0]->scores);
  CHECK(kept_in(a, 0) == top_experts(a.layers[0]->scores, 3, {}));
  for (double score : a.layers[0]->scores) CHECK((score >= 0 && score < 1));
  options.seed = 8;
  CHECK(rank_experts(profile, options, "usage").layers[0]->scores != a.layers[0]->scores);
  const LayerStats stats = layer_stats(profile, 0, std::vector<int64_t>{0}, Weighting::kToken);
  CHECK(metric_scores(RankMetric::kRandom, stats, 0, 7) == a.layers[0]->scores);
  CHECK(metric_scores(RankMetric::kRandom, stats, 1, 7) != a.layers[0]->scores);
}

TEST_CASE("per-document weighting divides each document by its token count") {
  const UsageProfile profile = metric_profile();
  RankOptions options = options_for(RankMetric::kMass, "2");
  options.weighting = Weighting::kDocument;
  const RankedPlan plan = rank_experts(profile, options, "usage");
  // mass / tokens summed: [0.25, 0.05, 0.15, 0.275, 0.125, 2]
  CHECK(kept_in(plan, 0) == Ids{3, 5});
  CHECK(plan.layers[0]->scores[3] == doctest::Approx(0.275));
  CHECK(plan.layers[0]->scores[5] == doctest::Approx(2.0));
  CHECK(plan_document(plan)["weighting"] == "document");
}

TEST_CASE("a domain filter ranks on that domain's documents only") {
  const UsageProfile profile = metric_profile();
  RankOptions options = options_for(RankMetric::kMass, "2");
  options.domain = "prose";
  RankedPlan plan = rank_experts(profile, options, "usage");
  CHECK(kept_in(plan, 0) == Ids{3, 5});
  CHECK(plan.documents == 1);
  options.domain = "code";
  plan = rank_experts(profile, options, "usage");
  CHECK(kept_in(plan, 0) == Ids{0, 2});
  CHECK(plan.layers[0]->scores[3] == doctest::Approx(0.1));
  options.domain = "math";
  check_mentions(thrown_message<InputError>([&] { rank_experts(profile, options, "usage"); }),
                 {"unknown domain 'math'", "code, prose"});
  UsageProfile unlabelled = make_profile("olmoe", 1, 4, 2, 0, {0});
  add_document(unlabelled, "", 4, 0, {1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1});
  check_mentions(thrown_message<InputError>([&] { rank_experts(unlabelled, options, "usage"); }),
                 {"unknown domain 'math'", "no domain labels"});
}

TEST_CASE("EMO shared experts are always kept and count in K") {
  // 8 experts, the last (7) shared; its score is the lowest, yet it stays.
  UsageProfile profile = make_profile("emo", 2, 8, 3, 1, {0, 1});
  add_document(profile, "", 10, 0, {1, 2, 3, 4, 5, 6, 7, 0}, {1, 2, 3, 4, 5, 6, 7, 0},
               {1, 1, 1, 1, 1, 1, 1, 0});
  const RankedPlan plan = rank_experts(profile, options_for(RankMetric::kMass, "3"), "usage");
  CHECK(kept_in(plan, 0) == Ids{5, 6, 7});
  CHECK(kept_in(plan, 1) == Ids{0, 1, 7});  // no usage at all: ties by lower id
  CHECK(*plan.layers[0]->kept_mass_share == doctest::Approx(13.0 / 28));
  CHECK(!plan.layers[1]->kept_mass_share.has_value());
  const nlohmann::json document = plan_document(plan);
  CHECK(document["num_shared_experts"] == 1);
  CHECK(document["prune_keep_k"] == 3);
  CHECK(document["num_experts_per_tok"] == 3);
  check_mentions(thrown_message<InputError>(
                     [&] { rank_experts(profile, options_for(RankMetric::kMass, "1"), "usage"); }),
                 {"at least 2", "1 shared"});

  // EMO's 12.5% of 128: 15 routed + the shared 127.
  UsageProfile big = make_profile("emo", 1, 128, 8, 1, {0});
  std::vector<int32_t> counts(128);
  std::vector<float> mass(128);
  for (int e = 0; e < 128; ++e) {
    counts[static_cast<size_t>(e)] = e;
    mass[static_cast<size_t>(e)] = static_cast<float>(e % 50);
  }
  add_document(big, "", 100, 0, counts, mass, std::vector<float>(128, 0));
  const Ids kept = kept_in(rank_experts(big, options_for(RankMetric::kFreq, "12.5%"), "u"), 0);
  Ids expected(15);
  std::iota(expected.begin(), expected.end(), 112);
  expected.push_back(127);
  CHECK(kept.size() == 16);
  CHECK(kept ==
        Ids{112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127});
}

TEST_CASE("separate shared experts (qwen2_moe) are not part of the plan") {
  UsageProfile profile = make_profile("qwen2_moe", 1, 4, 2, 1, {0});
  add_document(profile, "", 4, 0, {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 0, 0, 0});
  const RankedPlan plan = rank_experts(profile, options_for(RankMetric::kMass, "1"), "usage");
  CHECK(kept_in(plan, 0) == Ids{3});
  CHECK(plan_document(plan)["num_shared_experts"] == 0);
}

TEST_CASE("ties break by the lower expert id; layers without experts stay null") {
  UsageProfile profile = make_profile("olmoe", 3, 6, 2, 0, {0, 2});
  add_document(profile, "", 8, 0, {2, 1, 2, 1, 2, 0}, {1, 3, 1, 3, 1, 0}, {0, 0, 0, 0, 0, 0});
  const RankedPlan plan = rank_experts(profile, options_for(RankMetric::kFreq, "2"), "usage");
  CHECK(kept_in(plan, 0) == Ids{0, 2});
  CHECK(!plan.layers[1].has_value());
  CHECK(kept_in(plan, 2) == Ids{0, 1});
  CHECK(ranking_order(std::vector<double>{1, 3, 1, 3, 1, 0}, {}) == Ids{1, 3, 0, 2, 4, 5});
  const nlohmann::json document = plan_document(plan);
  CHECK(document["experts_kept_per_layer"] == nlohmann::json::parse("[[0, 2], null, [0, 1]]"));
  CHECK(document["scores"][1].is_null());
  CHECK(document["kept_share"][1].is_null());
  CHECK(document["original_model"] == "/models/tiny");
  CHECK(document["pruning_method"] == "moeslice-rank-freq");
  CHECK(document["uniform"] == true);
  // The file form parses back to the same document.
  CHECK(nlohmann::json::parse(format_plan_document(document)) == document);
}

TEST_CASE("nonuniform: the global budget is spent, every layer keeps at least min(top-k, K)") {
  // Layer 0's mass is spread evenly, layer 1's sits on one expert, layer 2 has none.
  UsageProfile profile = make_profile("emo", 3, 8, 2, 1, {0, 1, 2});  // top-2, shared 7
  add_document(profile, "", 10, 0, {1, 1, 1, 1, 1, 1, 1, 10}, {1, 1, 1, 1, 1, 1, 1.5f, 10},
               std::vector<float>(8, 0));
  const int64_t d = 0;
  for (int e = 0; e < 8; ++e) {
    profile.mass[profile.index(d, 1, e)] = e == 2 ? 9.0f : 0.1f;
    profile.counts[profile.index(d, 1, e)] = 1;
  }
  profile.mass[profile.index(d, 1, 7)] = 10.0f;
  RankOptions options = options_for(RankMetric::kMass, "4");
  options.nonuniform = true;
  const RankedPlan plan = rank_experts(profile, options, "usage");
  size_t total = 0;
  for (int64_t layer = 0; layer < 3; ++layer) {
    const Ids& kept = kept_in(plan, layer);
    total += kept.size();
    CHECK(std::binary_search(kept.begin(), kept.end(), 7));
    CHECK(kept.size() >= 2);  // min(top-k, K): one top-k serves every layer of the slice
  }
  CHECK(total == 12);
  // Layer 0: shares 1/7.5 each, 1.5/7.5 for id 6; layer 1: 9/9.6 for id 2, 0.1/9.6 for others.
  // After the minimum (6 in layer 0, 2 in layer 1, 0 in layer 2), the 6 extra go to layer 0.
  CHECK(kept_in(plan, 0) == Ids{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(kept_in(plan, 1) == Ids{2, 7});
  CHECK(kept_in(plan, 2) == Ids{0, 7});
  CHECK(plan_document(plan)["uniform"] == false);
  CHECK(plan_document(plan)["num_experts_per_tok"] == 2);

  // A budget of top-k or less per layer leaves nothing to move: every layer keeps K.
  options.keep = parse_keep_amount("2");
  const RankedPlan floor = rank_experts(profile, options, "usage");
  for (int64_t layer = 0; layer < 3; ++layer) CHECK(kept_in(floor, layer).size() == 2);
  CHECK(plan_document(floor)["uniform"] == true);

  // The budget can never exceed what the layers hold.
  options.keep = parse_keep_amount("8");
  const RankedPlan all = rank_experts(profile, options, "usage");
  for (int64_t layer = 0; layer < 3; ++layer) CHECK(kept_in(all, layer).size() == 8);
}

TEST_CASE("refusals: unknown metric, malformed metadata") {
  check_mentions(thrown_message<InputError>([] { parse_rank_metric("entropy"); }),
                 {"unknown metric 'entropy'", "mass, freq, reap, coverage, random"});
  CHECK(parse_rank_metric("reap") == RankMetric::kReap);
  UsageProfile profile = make_profile("olmoe", 1, 4, 2, 0, {0});
  profile.info.erase("top_k");
  check_mentions(thrown_message<FormatError>([&] {
                   rank_experts(profile, options_for(RankMetric::kMass, "2"), "u.safetensors");
                 }),
                 {"u.safetensors", "top_k"});
  profile = make_profile("olmoe", 1, 4, 2, 0, {3});
  check_mentions(thrown_message<FormatError>([&] {
                   rank_experts(profile, options_for(RankMetric::kMass, "2"), "u.safetensors");
                 }),
                 {"u.safetensors", "expert layer 3"});
  profile = make_profile("nosuch", 1, 4, 2, 0, {0});
  thrown_message<UnsupportedError>(
      [&] { rank_experts(profile, options_for(RankMetric::kMass, "2"), "u.safetensors"); });
}

// The slow way: for each MoE layer l, profile the whole corpus with the plan so far (layers < l
// restricted) and rank layer l exactly as `rank` does.
static RankedPlan slow_select(const Model& model, const std::vector<TokenDocument>& documents,
                              const RankOptions& options, size_t max_seq) {
  const ModelSpec& spec = model.spec;
  KeepPlan so_far;
  so_far.source = "plan so far";
  so_far.kept.resize(static_cast<size_t>(spec.num_layers));
  RankedPlan last;
  for (int64_t layer : spec.expert_layers()) {
    ProfileOptions profile_options;
    profile_options.run.max_seq = max_seq;
    profile_options.run.threads = 1;
    profile_options.keep = so_far;
    UsageProfile usage = empty_usage_profile(model, profile_options);
    profile_documents(model, documents, {}, profile_options, usage);
    const RankedPlan ranked = rank_experts(usage, options, "slow");
    so_far.kept[static_cast<size_t>(layer)] = kept_in(ranked, layer);
    if (last.layers.empty()) last = ranked;
    last.layers[static_cast<size_t>(layer)] = ranked.layers[static_cast<size_t>(layer)];
  }
  return last;
}

TEST_CASE("select equals profiling with the plan so far and ranking layer by layer") {
  test::TempDir dir;
  struct Case {
    std::string family;
    std::map<Dim, int64_t> dims;
    nlohmann::json overrides;
    RankMetric metric;
    std::string keep;
    Weighting weighting;
  };
  const std::vector<Case> cases = {
      {"olmoe",
       {{Dim::kLayers, 4}},
       nlohmann::json::object(),
       RankMetric::kMass,
       "50%",
       Weighting::kToken},
      {"emo",
       {{Dim::kLayers, 3}, {Dim::kTopK, 3}},
       nlohmann::json::object(),
       RankMetric::kReap,
       "4",
       Weighting::kDocument},
      {"flex_olmo",
       {{Dim::kLayers, 3}},
       nlohmann::json::object(),
       RankMetric::kFreq,
       "3",
       Weighting::kToken},
      {"qwen2_moe",
       {{Dim::kLayers, 4}},
       {{"mlp_only_layers", {1}}},
       RankMetric::kCoverage,
       "25%",
       Weighting::kToken},
      {"mixtral",
       {{Dim::kLayers, 3}},
       nlohmann::json::object(),
       RankMetric::kRandom,
       "5",
       Weighting::kToken},
  };
  std::mt19937 random(5);
  std::vector<TokenDocument> documents;
  for (size_t length : {7u, 30u, 3u, 19u, 12u}) {
    TokenDocument document;
    document.id = "doc" + std::to_string(documents.size());
    for (size_t t = 0; t < length; ++t)
      document.tokens.push_back(static_cast<int32_t>(random() % 256));
    documents.push_back(document);
  }
  for (const Case& c : cases) {
    CAPTURE(c.family);
    RandomModelOptions random_options;
    random_options.family = c.family;
    random_options.dims = c.dims;
    random_options.config_overrides = c.overrides;
    random_options.seed = 3;
    write_random_checkpoint(random_options, dir / c.family);
    const Model model = open_model(dir / c.family);
    SelectOptions select;
    select.rank.metric = c.metric;
    select.rank.keep = parse_keep_amount(c.keep);
    select.rank.weighting = c.weighting;
    select.rank.seed = 4;
    select.run.threads = 2;   // the slow way runs on one thread
    select.run.max_seq = 16;  // documents longer than a window are cut
    const SelectResult fast = select_experts(model, documents, select);
    const RankedPlan slow = slow_select(model, documents, select.rank, 16);
    REQUIRE(fast.plan.layers.size() == slow.layers.size());
    bool restricted_changes_something = false;
    for (size_t l = 0; l < slow.layers.size(); ++l) {
      CAPTURE(l);
      REQUIRE(fast.plan.layers[l].has_value() == slow.layers[l].has_value());
      if (!slow.layers[l]) continue;
      CHECK(fast.plan.layers[l]->kept == slow.layers[l]->kept);
      CHECK(fast.plan.layers[l]->scores == slow.layers[l]->scores);  // bit for bit
      CHECK(fast.plan.layers[l]->kept_mass_share == slow.layers[l]->kept_mass_share);
      CHECK(fast.plan.layers[l]->kept_count_share == slow.layers[l]->kept_count_share);
    }
    // The greedy plan differs from ranking one unrestricted profile somewhere (otherwise the
    // test would not tell the two apart).
    ProfileOptions plain;
    plain.run.max_seq = 16;
    UsageProfile usage = empty_usage_profile(model, plain);
    profile_documents(model, documents, {}, plain, usage);
    const RankedPlan one_shot = rank_experts(usage, select.rank, "one-shot");
    for (size_t l = 0; l < slow.layers.size(); ++l)
      if (slow.layers[l] && one_shot.layers[l]->scores != slow.layers[l]->scores)
        restricted_changes_something = true;
    CHECK(restricted_changes_something == (c.metric != RankMetric::kRandom));
    // The plan is a valid keep plan for the model.
    CHECK_NOTHROW(parse_keep_plan(plan_document(fast.plan), model.spec, "plan"));
    CHECK(fast.plan.method == std::string("moeslice-select-") + metric_name(c.metric));
  }
}

TEST_CASE("select refuses a domain filter, a nonuniform budget and an empty corpus") {
  test::TempDir dir;
  RandomModelOptions random_options;
  random_options.family = "olmoe";
  write_random_checkpoint(random_options, dir / "m");
  const Model model = open_model(dir / "m");
  std::vector<TokenDocument> documents(1);
  documents[0].id = "a";
  documents[0].tokens = {1, 2, 3};
  SelectOptions select;
  select.rank.keep = parse_keep_amount("2");
  select.rank.domain = "code";
  check_mentions(thrown_message<InputError>([&] { select_experts(model, documents, select); }),
                 {"domain"});
  select.rank.domain.reset();
  select.rank.nonuniform = true;
  check_mentions(thrown_message<InputError>([&] { select_experts(model, documents, select); }),
                 {"nonuniform"});
  select.rank.nonuniform = false;
  check_mentions(thrown_message<InputError>([&] { select_experts(model, {}, select); }),
                 {"no document"});
  select.rank.keep = parse_keep_amount("9");
  check_mentions(thrown_message<InputError>([&] { select_experts(model, documents, select); }),
                 {"only 8"});
}

TEST_CASE("group-limited routing: the best experts of every group, the same count in each") {
  ExpertLayout layout;
  layout.family = "deepseek_v3";
  layout.experts = 8;
  layout.top_k = 2;
  layout.groups = 2;
  layout.groups_per_token = 1;
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.05};
  RankOptions options;
  // The layer's best 4 are all in group 0; balanced, each group gives its best 2.
  CHECK(choose_experts(scores, 4, layout, options) == Ids{0, 1, 5, 6});
  CHECK_NOTHROW(check_group_balance(layout, options, 4, "--keep"));
  options.balance_groups = false;
  CHECK(choose_experts(scores, 4, layout, options) == Ids{0, 1, 2, 3});
  CHECK_NOTHROW(check_group_balance(layout, options, 3, "--keep"));
  options.balance_groups = true;
  check_mentions(
      thrown_message<InputError>([&] { check_group_balance(layout, options, 3, "--keep"); }),
      {"--keep keeps 3", "2 groups of 4", "a multiple of 2", "--no-group-balance"});
  check_mentions(
      thrown_message<InputError>([&] { check_group_balance(layout, options, 2, "--keep"); }),
      {"at least 2"});
  layout.top_k = 3;  // one group per token must hold 3
  check_mentions(
      thrown_message<InputError>([&] { check_group_balance(layout, options, 4, "--keep"); }),
      {"keep at least 6"});
  options.nonuniform = true;
  check_mentions(
      thrown_message<InputError>([&] { check_group_balance(layout, options, 6, "--keep"); }),
      {"--nonuniform"});
}
