// The processes of one job and what they exchange. A command runs as one process, or as the
// ranks of an MPI job (`mpirun -n N moeslice profile ...`; the MPI side lives in
// apps/mpi_cluster.cpp, so the library never links MPI). Work is dealt by position: item i of a
// corpus (a document, then the multiple-choice tasks after the documents) belongs to rank
// i % size. Every rank reads the whole input, computes its own items, and the results are
// exchanged item by item so that every sum is taken in the single process's order: the outputs
// are then bit for bit those of one process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moeslice {

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // A collective: every rank calls it, in the same order, with its own bytes; each gets every
  // rank's bytes, by rank.
  virtual std::vector<std::string> all_gather(const std::string& mine) const = 0;

  bool is_root() const { return rank() == 0; }
  int owner(int64_t item) const { return static_cast<int>(item % size()); }
  bool owns(int64_t item) const { return owner(item) == rank(); }
};

// The cluster of one process: rank 0 of 1; all_gather returns its own bytes.
const Cluster& single_process();

}  // namespace moeslice
