// The input/output rule (common/io_rules.h) and staging entries (common/staging.h): special files
// refused as inputs and outputs, overlap by device and inode and by staging names, the output's
// directory checked first, stale staging removed, and concurrent replacement of one output.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/io_rules.h"
#include "common/mapped_file.h"
#include "common/staging.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using test::check_mentions;
using test::read_text;
using test::TempDir;
using test::thrown_message;
using test::write_file;

// ---- inputs -----------------------------------------------------------------------------------

TEST_CASE("a FIFO, a device or a directory is refused as an input file without blocking") {
  TempDir dir;
  const auto fifo = dir / "plan.json";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // no writer: a blocking open would hang here
  check_mentions(thrown_message<InputError>([&] { check_input_file(fifo, "--plan"); }),
                 {"--plan", fifo.string(), "is a FIFO", "not a regular file"});
  check_mentions(thrown_message<InputError>([&] { check_input_file(fifo, "--corpus", true); }),
                 {fifo.string(), "is a FIFO"});
  check_mentions(thrown_message<InputError>([&] { MappedFile file(fifo); }),
                 {fifo.string(), "is a FIFO"});
  check_mentions(
      thrown_message<InputError>([&] { read_input_file("/dev/zero", kMaxJsonFileBytes); }),
      {"/dev/zero", "is a character device"});
  check_mentions(thrown_message<InputError>([&] { read_input_file(dir.path(), 100, "usage"); }),
                 {"usage", dir.path().string(), "is a directory"});
}

TEST_CASE("an input file larger than its limit is refused; a pipe is a stream input") {
  TempDir dir;
  write_file(dir / "big.json", std::string(200, ' '));
  check_mentions(thrown_message<InputError>([&] { read_input_file(dir / "big.json", 100); }),
                 {(dir / "big.json").string(), "200 bytes", "100"});
  CHECK(read_input_file(dir / "big.json", 200).size() == 200);
  int ends[2];
  REQUIRE(::pipe(ends) == 0);
  const std::string name = "/proc/self/fd/" + std::to_string(ends[0]);
  CHECK_NOTHROW(check_input_file(name, "--corpus", /*stream_ok=*/true));
  CHECK_THROWS_AS(check_input_file(name, "--plan"), InputError);
  ::close(ends[0]);
  ::close(ends[1]);
}

// ---- outputs ----------------------------------------------------------------------------------

TEST_CASE("a special file is never an output, even with --force") {
  for (const bool force : {false, true}) {
    check_mentions(thrown_message<InputError>([&] { check_new_output("/dev/null", {}, force); }),
                   {"/dev/null", "character device", "regular files or directories"});
  }
  TempDir dir;
  fs::create_symlink("/dev/null", dir / "null-link");
  CHECK_THROWS_AS(check_output_replaceable(dir / "null-link", true), InputError);
  CHECK_THROWS_AS(write_file_atomically("/dev/null", "x", true), InputError);
}

TEST_CASE("an empty, homeless or unwritable output is refused before any work") {
  check_mentions(thrown_message<InputError>([&] { check_new_output("", {}, true); }),
                 {"output path is empty"});
  TempDir dir;
  check_mentions(
      thrown_message<InputError>([&] { check_new_output(dir / "missing" / "out", {}, true); }),
      {(dir / "missing").string(), "does not exist"});
  if (::geteuid() != 0) {  // root may write anywhere
    fs::create_directory(dir / "ro");
    fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    check_mentions(
        thrown_message<InputError>([&] { check_new_output(dir / "ro" / "out", {}, false); }),
        {(dir / "ro").string(), "not writable"});
    fs::permissions(dir / "ro", fs::perms::owner_all);
  }
}

TEST_CASE("a hard link to an input is the input; a bind of its directory is found by inode") {
  TempDir dir;
  write_file(dir / "plan.json", "{}");
  fs::create_hard_link(dir / "plan.json", dir / "alias.json");
  const std::vector<fs::path> inputs = {dir / "plan.json"};
  check_mentions(
      thrown_message<InputError>([&] { check_output_outside_inputs(dir / "alias.json", inputs); }),
      {"alias.json", "overlaps the input"});
  fs::create_directory(dir / "model");
  fs::create_directory_symlink(dir / "model", dir / "model-link");
  const std::vector<fs::path> model = {dir / "model-link"};
  CHECK_THROWS_AS(check_output_outside_inputs(dir / "model" / "out", model), InputError);
  CHECK_NOTHROW(check_output_outside_inputs(dir / "other.json", inputs));
}

TEST_CASE("an input named like the output's staging entries is refused") {
  TempDir dir;
  const auto input = dir / ".u.safetensors.tmp-123-0badcafe";
  write_file(input, "x");
  const std::vector<fs::path> inputs = {input};
  check_mentions(thrown_message<InputError>(
                     [&] { check_output_outside_inputs(dir / "u.safetensors", inputs); }),
                 {input.string(), "stage"});
  // profile's OUT.partial is checked as a companion output of its own
  const std::vector<fs::path> partial = {dir / "u.safetensors.partial"};
  CHECK_THROWS_AS(check_output_outside_inputs(dir / "u.safetensors.partial", partial), InputError);
}

// ---- staging entries ----------------------------------------------------------------------------

TEST_CASE("staging names match one exact pattern") {
  long pid = 0;
  CHECK(is_staging_name(".out.tmp-123-0badcafe", "out", pid));
  CHECK(pid == 123);
  CHECK_FALSE(is_staging_name(".out.tmp-123-0badcafe", "ou", pid));
  CHECK_FALSE(is_staging_name(".out.tmp-123-0badcafeX", "out", pid));
  CHECK_FALSE(is_staging_name(".out.tmp-x23-0badcafe", "out", pid));
  CHECK_FALSE(is_staging_name(".out.tmp--0badcafe", "out", pid));
  CHECK_FALSE(is_staging_name("out.tmp-123-0badcafe", "out", pid));
  const std::string fresh = staging_path_for("/x/out").filename().string();
  CHECK(is_staging_name(fresh, "out", pid));
  CHECK(pid == static_cast<long>(::getpid()));
}

TEST_CASE("a writer removes stale staging entries of dead processes, and only those") {
  TempDir dir;
  // A PID above the kernel's maximum (4194304) is surely not running.
  const auto stale_dir = dir / ".out.tmp-99999999-0badcafe";
  fs::create_directories(stale_dir / "sub");
  write_file(stale_dir / "sub" / "shard.safetensors", "half");
  const auto stale_file = dir / ".out.tmp-99999998-12345678";
  write_file(stale_file, "half");
  const auto running = dir / fmt::format(".out.tmp-{}-0badcafe", ::getppid());
  fs::create_directory(running);
  const auto unrelated = dir / ".out.tmp-99999999-0badcafe.keep";
  write_file(unrelated, "mine");
  const auto other_output = dir / ".other.tmp-99999999-0badcafe";
  write_file(other_output, "x");

  write_file_atomically(dir / "out", "new", /*overwrite=*/false);
  CHECK_FALSE(fs::exists(stale_dir));
  CHECK_FALSE(fs::exists(stale_file));
  CHECK(fs::exists(running));
  CHECK(fs::exists(unrelated));
  CHECK(fs::exists(other_output));
  CHECK(read_text(dir / "out") == "new");
}

TEST_CASE("concurrent writers replacing one output directory never fail and leave one output") {
  TempDir dir;
  const auto out = dir / "out";
  constexpr int kWriters = 4;
  constexpr int kRounds = 25;
  std::vector<std::string> failures(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      for (int round = 0; round < kRounds; ++round) {
        try {
          AtomicOutputDir output(out, /*overwrite=*/true);
          write_file(output.staging() / "writer.txt", std::to_string(w));
          output.commit();
        } catch (const std::exception& e) {
          failures[w] = e.what();
        }
      }
    });
  for (auto& thread : threads) thread.join();
  for (const auto& failure : failures) CHECK(failure.empty());
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    names.push_back(entry.path().filename().string());
  CHECK(names == std::vector<std::string>{"out"});
  CHECK(fs::exists(out / "writer.txt"));
}

}  // namespace
}  // namespace moeslice
