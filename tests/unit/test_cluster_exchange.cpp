// The exchange between ranks without MPI: a cluster of threads (each thread a rank, all_gather
// through shared slots and a barrier) runs gather_usage_profile and share_layer_rows, and the
// byte packing they use round-trips.
#include <barrier>
#include <thread>

#include <doctest/doctest.h>
#include <fmt/core.h>

#include "common/byte_packing.h"
#include "common/cluster.h"
#include "profile/usage_exchange.h"

using namespace moeslice;

namespace {

struct Exchange {
  explicit Exchange(int ranks) : slots(static_cast<size_t>(ranks)), barrier(ranks) {}
  std::vector<std::string> slots;
  std::barrier<> barrier;
};

class ThreadRank final : public Cluster {
 public:
  ThreadRank(Exchange& exchange, int rank) : exchange_(exchange), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(exchange_.slots.size()); }
  std::vector<std::string> all_gather(const std::string& mine) const override {
    exchange_.slots[static_cast<size_t>(rank_)] = mine;
    exchange_.barrier.arrive_and_wait();
    std::vector<std::string> all = exchange_.slots;
    exchange_.barrier.arrive_and_wait();
    return all;
  }

 private:
  Exchange& exchange_;
  int rank_;
};

// A profile of the documents `ids` whose every value encodes (document, layer, expert).
UsageProfile numbered_profile(const std::vector<int64_t>& ids) {
  UsageProfile profile;
  profile.layers = 2;
  profile.experts = 3;
  profile.info = {{"model", "m"}};
  for (int64_t d : ids) {
    const int64_t index = profile.add_document({fmt::format("doc{}", d), d % 2 ? "odd" : ""});
    profile.tokens[static_cast<size_t>(index)] = 10 + d;
    for (int64_t l = 0; l < 2; ++l)
      for (int64_t e = 0; e < 3; ++e) {
        const size_t i = profile.index(index, l, e);
        profile.counts[i] = static_cast<int32_t>(100 * d + 10 * l + e);
        profile.mass[i] = 0.5f * static_cast<float>(profile.counts[i]);
        profile.gate_norm[i] = 0.25f * static_cast<float>(profile.counts[i]);
        profile.gate_weight[i] = 0.125f * static_cast<float>(profile.counts[i]);
      }
  }
  return profile;
}

}  // namespace

TEST_CASE("bytes packed are read back in order") {
  BytePacker packer;
  packer.put<int64_t>(-5);
  packer.put_string("id");
  packer.put_vector(std::vector<float>{1.5f, -2.0f});
  packer.put_vector(std::vector<int32_t>{});
  const std::string bytes = packer.take();
  ByteUnpacker reader(bytes);
  CHECK(reader.get<int64_t>() == -5);
  CHECK(reader.get_string() == "id");
  CHECK(reader.get_vector<float>() == std::vector<float>{1.5f, -2.0f});
  CHECK(reader.get_vector<int32_t>().empty());
  CHECK(reader.done());
  CHECK_THROWS_AS(reader.get<int32_t>(), std::logic_error);
}

TEST_CASE("the one-process cluster owns everything") {
  const Cluster& one = single_process();
  CHECK(one.size() == 1);
  CHECK(one.owns(0));
  CHECK(one.owns(7));
  CHECK(one.all_gather("x") == std::vector<std::string>{"x"});
}

TEST_CASE("ranks' documents are gathered in corpus order, whatever the number of ranks") {
  for (int ranks : {1, 2, 3, 5}) {
    const int64_t documents = 4;  // 5 ranks: one owns nothing
    const UsageProfile whole = numbered_profile({0, 1, 2, 3});
    Exchange exchange(ranks);
    std::vector<UsageProfile> results(static_cast<size_t>(ranks));
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
      threads.emplace_back([&, r] {
        ThreadRank rank(exchange, r);
        std::vector<int64_t> mine;
        for (int64_t d = 0; d < documents; ++d)
          if (rank.owns(d)) mine.push_back(d);
        results[static_cast<size_t>(r)] =
            gather_usage_profile(rank, numbered_profile(mine), documents);
      });
    for (auto& thread : threads) thread.join();
    for (const UsageProfile& result : results) {
      CHECK(result.document_count() == documents);
      for (int64_t d = 0; d < documents; ++d) {
        CHECK(result.documents[static_cast<size_t>(d)].id == whole.documents[d].id);
        CHECK(result.documents[static_cast<size_t>(d)].domain == whole.documents[d].domain);
      }
      CHECK(result.tokens == whole.tokens);
      CHECK(result.counts == whole.counts);
      CHECK(result.mass == whole.mass);
      CHECK(result.gate_norm == whole.gate_norm);
      CHECK(result.gate_weight == whole.gate_weight);
      CHECK(result.info == whole.info);
    }
  }
}

TEST_CASE("a layer's rows measured by their owners reach every rank") {
  const int ranks = 3;
  const int64_t documents = 5;
  const UsageProfile whole = numbered_profile({0, 1, 2, 3, 4});
  Exchange exchange(ranks);
  std::vector<UsageProfile> results(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      ThreadRank rank(exchange, r);
      UsageProfile usage = whole;
      // Only the owner's rows of layer 1 are known; the others are zero.
      for (int64_t d = 0; d < documents; ++d)
        if (!rank.owns(d))
          for (int64_t e = 0; e < 3; ++e) {
            const size_t i = usage.index(d, 1, e);
            usage.counts[i] = 0;
            usage.mass[i] = usage.gate_norm[i] = usage.gate_weight[i] = 0;
          }
      share_layer_rows(rank, usage, 1);
      results[static_cast<size_t>(r)] = std::move(usage);
    });
  for (auto& thread : threads) thread.join();
  for (const UsageProfile& result : results) {
    CHECK(result.counts == whole.counts);
    CHECK(result.mass == whole.mass);
    CHECK(result.gate_norm == whole.gate_norm);
    CHECK(result.gate_weight == whole.gate_weight);
  }
}
