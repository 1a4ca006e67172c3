// The MPI job: joining it, exchanging bytes between ranks (MPI_Allgatherv), and ending it. Built
// without MPI, only the one-process job exists.
#include "mpi_cluster.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"

#ifdef MOESLICE_WITH_MPI
#include <mpi.h>
#endif

namespace moeslice::app {
namespace {

const Cluster* current = &single_process();

// The number of ranks a launcher announced in the environment, 0 when none did.
int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return std::getenv("PMIX_RANK") != nullptr ? 2 : 0;
}

#ifdef MOESLICE_WITH_MPI
class MpiCluster final : public Cluster {
 public:
  MpiCluster() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // In rounds (MPI counts and displacements are ints: a round carries at most INT_MAX bytes
  // from all ranks together), so results of any size travel.
  std::vector<std::string> all_gather(const std::string& mine) const override {
    const uint64_t round_bytes = std::min<uint64_t>(
        uint64_t{1} << 30,
        static_cast<uint64_t>(std::numeric_limits<int>::max()) / static_cast<uint64_t>(size_));
    const uint64_t length = mine.size();
    std::vector<uint64_t> lengths(static_cast<size_t>(size_));
    MPI_Allgather(&length, 1, MPI_UINT64_T, lengths.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    std::vector<std::string> by_rank(static_cast<size_t>(size_));
    for (size_t r = 0; r < by_rank.size(); ++r) by_rank[r].resize(lengths[r]);
    const uint64_t longest = *std::max_element(lengths.begin(), lengths.end());
    std::vector<int> counts(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    std::string round;
    for (uint64_t begin = 0; begin < longest; begin += round_bytes) {
      int total = 0;
      for (size_t r = 0; r < by_rank.size(); ++r) {
        counts[r] =
            static_cast<int>(std::min(round_bytes, lengths[r] - std::min(begin, lengths[r])));
        offsets[r] = total;
        total += counts[r];
      }
      round.resize(static_cast<size_t>(total));
      const int mine_count = counts[static_cast<size_t>(rank_)];
      MPI_Allgatherv(mine.data() + std::min<uint64_t>(begin, length), mine_count, MPI_BYTE,
                     round.data(), counts.data(), offsets.data(), MPI_BYTE, MPI_COMM_WORLD);
      for (size_t r = 0; r < by_rank.size(); ++r)
        std::copy_n(round.data() + offsets[r], counts[r], by_rank[r].data() + begin);
    }
    return by_rank;
  }

 private:
  int rank_ = 0;
  int size_ = 1;
};
#endif

}  // namespace

void start_job(int* argc, char*** argv) {
  if (launched_ranks() <= 0) return;
#ifdef MOESLICE_WITH_MPI
  MPI_Init(argc, argv);
  static const MpiCluster cluster;
  current = &cluster;
#else
  (void)argc;
  (void)argv;
  if (launched_ranks() > 1)
    throw UnsupportedError(
        "started as one of several MPI ranks, but this moeslice was built without MPI "
        "(install libopenmpi-dev and build again, or run it as one process)");
#endif
}

const Cluster& job() { return *current; }

int end_job(int status) {
#ifdef MOESLICE_WITH_MPI
  if (current != &single_process()) {
    if (status == 0) {
      MPI_Finalize();
      return 0;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status);
  }
#endif
  return status;
}

std::string rank_prefix() {
  if (current->size() == 1) return "";
  return fmt::format("rank {} of {}: ", current->rank(), current->size());
}

void require_shared_corpus(const std::string& corpus) {
  if (corpus == "-" && current->size() > 1)
    throw InputError(fmt::format(
        "--corpus - (standard input) cannot be shared by {} ranks: each reads the whole corpus "
        "and only rank 0 gets standard input; give a file on storage every rank sees",
        current->size()));
}

std::string build_features() {
#ifdef MOESLICE_WITH_MPI
  return " (built with MPI)";
#else
  return "";
#endif
}

}  // namespace moeslice::app
