// Entry point of the `moeslice` command line: joins the job (one process or an MPI rank), builds
// the subcommands, and turns library errors into one-line messages and exit codes (2 = bad
// input, 1 = system or internal failure).
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <set>
#include <string>
#include <thread>

#include <fmt/core.h>

#include "commands.h"
#include "common/error.h"
#include "common/staging.h"
#include "mpi_cluster.h"

namespace {

// The subcommands that share their work among the ranks of an MPI job (docs/scaling.md).
const std::set<std::string> kRankedCommands = {"profile", "select", "eval", "compare"};

// The first word that is not an option: the subcommand asked for.
std::string subcommand_of(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (argv[i][0] != '-') return argv[i];
  return "";
}

// Prints the error and ends the job with `status`. In a job of several ranks, the ranks other
// than 0 wait a moment first: an error every rank meets (a bad corpus line) is then printed once,
// by rank 0, whose abort ends the others.
int fail(int status, const std::string& message) {
  if (!moeslice::app::job().is_root()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  fmt::print(stderr, "moeslice: {}{}\n", moeslice::app::rank_prefix(), message);
  return moeslice::app::end_job(status);
}

int run(int argc, char** argv) {
  CLI::App app{"moeslice: cut a mixture-of-experts model down to the experts a task needs",
               "moeslice"};
  app.set_version_flag(
      "--version", std::string("moeslice ") + MOESLICE_VERSION + moeslice::app::build_features());
  app.require_subcommand(1);

  try {
    moeslice::app::start_job(&argc, &argv);
    const std::string command = subcommand_of(argc, argv);
    if (moeslice::app::job().size() > 1 && !kRankedCommands.contains(command))
      throw moeslice::InputError(fmt::format(
          "'{}' runs as one process; of the commands, profile, select, eval and compare share "
          "their work among MPI ranks",
          command));
    moeslice::app::add_inspect_command(app);
    moeslice::app::add_make_random_command(app);
    moeslice::app::add_logits_command(app);
    moeslice::app::add_tokenize_command(app);
    moeslice::app::add_profile_command(app);
    moeslice::app::add_merge_command(app);
    moeslice::app::add_rank_command(app);
    moeslice::app::add_select_command(app);
    moeslice::app::add_slice_command(app);
    moeslice::app::add_unslice_command(app);
    moeslice::app::add_eval_command(app);
    moeslice::app::add_compare_command(app);
    moeslice::app::add_report_command(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every command-line mistake is bad input, exit 2. Every rank
    // parses the same words: rank 0 speaks for all.
    const int code = moeslice::app::job().is_root() ? app.exit(e) : e.get_exit_code();
    return moeslice::app::end_job(code == 0 ? 0 : 2);
  } catch (const moeslice::InputError& e) {
    return fail(2, fmt::format("error: {}", e.what()));
  } catch (const moeslice::Error& e) {
    return fail(1, fmt::format("error: {}", e.what()));
  } catch (const std::filesystem::filesystem_error& e) {
    // The system refused a file operation the library did not check first: a system failure
    // with the path, not a bug.
    return fail(1, fmt::format("error: {}", e.what()));
  } catch (const std::bad_alloc&) {
    return fail(1, "error: out of memory");
  } catch (const std::exception& e) {
    return fail(1, fmt::format("internal error: {}", e.what()));
  }
  return moeslice::app::end_job(0);
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists: an interrupted run removes its staging entries.
  moeslice::handle_interrupt_signals();
  return run(argc, argv);
}
