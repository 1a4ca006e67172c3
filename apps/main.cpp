// Entry point of the `moeslice` command line: builds the subcommands and turns library errors
// into one-line messages and exit codes (2 = bad input, 1 = system or internal failure).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>

#include <fmt/core.h>

#include "commands.h"
#include "common/error.h"
#include "common/staging.h"

int main(int argc, char** argv) {
  // Before any thread exists: an interrupted run removes its staging entries.
  moeslice::handle_interrupt_signals();
  CLI::App app{"moeslice: cut a mixture-of-experts model down to the experts a task needs",
               "moeslice"};
  app.set_version_flag("--version", std::string("moeslice ") + MOESLICE_VERSION);
  app.require_subcommand(1);

  try {
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
    // --help and --version exit 0; every command-line mistake is bad input, exit 2.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const moeslice::InputError& e) {
    fmt::print(stderr, "moeslice: error: {}\n", e.what());
    return 2;
  } catch (const moeslice::Error& e) {
    fmt::print(stderr, "moeslice: error: {}\n", e.what());
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // The system refused a file operation the library did not check first: a system failure
    // with the path, not a bug.
    fmt::print(stderr, "moeslice: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "moeslice: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "moeslice: internal error: {}\n", e.what());
    return 1;
  }
  return 0;
}
