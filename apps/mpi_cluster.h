// The job this process belongs to: one process, or a rank of an MPI job started by mpirun or
// srun (docs/scaling.md). MPI is optional at build time (CMake option MOESLICE_MPI); the library
// sees only the Cluster interface of common/cluster.h.
#pragma once

#include <string>

#include "common/cluster.h"

namespace moeslice::app {

// Joins the MPI job when the environment says this process was started as one of its ranks
// (Open MPI's OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK, PMI's PMI_SIZE), else runs as one process.
// Throws UnsupportedError when started as a rank by a launcher but built without MPI. Call once,
// first thing in main.
void start_job(int* argc, char*** argv);
// The job's cluster: single_process() unless start_job joined an MPI job.
const Cluster& job();
// Ends the job: a clean MPI finalisation when every rank succeeded (`status` 0), else this
// rank's error ends every rank (some may be waiting for it in an exchange). Returns `status` for
// a one-process job.
int end_job(int status);
// "moeslice (message)" prefix for a rank: "" for a one-process job, "rank 1 of 4: " otherwise.
std::string rank_prefix();
// Refuses a corpus read from standard input ("-") in a job of several ranks: every rank reads
// the whole corpus, and launchers give standard input to rank 0 only.
void require_shared_corpus(const std::string& corpus);
// " (built with MPI)" or "".
std::string build_features();

}  // namespace moeslice::app
