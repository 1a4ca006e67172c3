// Atomic outputs: a file or directory appears whole at commit() or not at all, never clobbers an
// existing output unless asked, and never lands inside (or around) an input.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/atomic_output.h"
#include "common/error.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using test::check_mentions;
using test::read_text;
using test::TempDir;
using test::thrown_message;
using test::write_file;

// Names of the entries of a directory, sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

using Names = std::vector<std::string>;

// ---- directories ------------------------------------------------------------------------------

TEST_CASE("an output directory appears at its final path only after commit") {
  TempDir dir;
  const auto out = dir / "out";
  AtomicOutputDir output(out, /*overwrite=*/false);
  CHECK(output.final_path() == out);
  CHECK(output.staging().parent_path() == dir.path());  // a sibling: the rename stays on one disk
  CHECK(output.staging().filename().string().starts_with("."));  // hidden while in progress
  write_file(output.staging() / "a.txt", "alpha");
  fs::create_directory(output.staging() / "sub");
  write_file(output.staging() / "sub" / "b.txt", "beta");
  CHECK_FALSE(fs::exists(out));

  output.commit();
  CHECK(listing(dir.path()) == Names{"out"});
  CHECK(read_text(out / "a.txt") == "alpha");
  CHECK(read_text(out / "sub" / "b.txt") == "beta");
}

TEST_CASE("an output directory abandoned by an exception leaves nothing behind") {
  TempDir dir;
  try {
    AtomicOutputDir output(dir / "out", false);
    write_file(output.staging() / "half.txt", "half written");
    throw std::runtime_error("failure before commit");
  } catch (const std::runtime_error&) {
  }
  CHECK(fs::is_empty(dir.path()));  // neither the output nor the staging sibling
}

TEST_CASE("an existing output directory is refused unless overwrite is asked for") {
  TempDir dir;
  const auto out = dir / "out";
  fs::create_directory(out);
  write_file(out / "old.txt", "old");
  check_mentions(thrown_message<InputError>([&] { AtomicOutputDir output(out, false); }),
                 {out.string(), "already exists"});
  CHECK(listing(dir.path()) == Names{"out"});

  AtomicOutputDir output(out, /*overwrite=*/true);
  write_file(output.staging() / "new.txt", "new");
  CHECK(listing(out) == Names{"old.txt"});  // untouched until commit
  output.commit();
  CHECK(listing(out) == Names{"new.txt"});
  CHECK(listing(dir.path()) == Names{"out"});  // the old output is gone, not left aside
}

TEST_CASE("an output directory whose parent does not exist is an InputError") {
  TempDir dir;
  const auto out = dir / "missing" / "out";
  const auto message = thrown_message<InputError>([&] { AtomicOutputDir output(out, false); });
  check_mentions(message, {out.string(), (dir / "missing").string(), "does not exist"});
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("an output directory given with a trailing slash is the directory itself") {
  TempDir dir;
  AtomicOutputDir output(dir.path() / "out/", false);
  CHECK(output.staging().parent_path() == dir.path());
  write_file(output.staging() / "a.txt", "alpha");
  output.commit();
  CHECK(listing(dir.path()) == Names{"out"});
  CHECK(read_text(dir / "out" / "a.txt") == "alpha");
}

// ---- files ------------------------------------------------------------------------------------

TEST_CASE("an output file appears at its final path only after commit") {
  TempDir dir;
  const auto out = dir / "out.txt";
  AtomicOutputFile output(out, false);
  output.write("hello ");
  output.write(std::as_bytes(std::span("world", 5)));
  CHECK_FALSE(fs::exists(out));
  CHECK(listing(dir.path()).size() == 1);  // the temporary sibling
  output.commit();
  CHECK(listing(dir.path()) == Names{"out.txt"});
  CHECK(read_text(out) == "hello world");
}

TEST_CASE("an output file abandoned by an exception leaves nothing behind") {
  TempDir dir;
  try {
    AtomicOutputFile output(dir / "out.txt", false);
    output.write("partial");
    throw std::runtime_error("failure before commit");
  } catch (const std::runtime_error&) {
  }
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("an existing output file is refused unless overwrite is asked for") {
  TempDir dir;
  const auto out = dir / "out.txt";
  write_file(out, "old");
  check_mentions(
      thrown_message<InputError>([&] { write_file_atomically(out, "new", /*overwrite=*/false); }),
      {out.string(), "already exists"});
  CHECK(read_text(out) == "old");
  write_file_atomically(out, "new", /*overwrite=*/true);
  CHECK(read_text(out) == "new");
  CHECK(listing(dir.path()) == Names{"out.txt"});
}

TEST_CASE("an output file whose parent does not exist is an InputError") {
  TempDir dir;
  const auto out = dir / "missing" / "out.txt";
  check_mentions(thrown_message<InputError>([&] { write_file_atomically(out, "x", false); }),
                 {out.string(), "does not exist"});
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("an output file path that is a directory is refused") {
  TempDir dir;
  fs::create_directory(dir / "out");
  check_mentions(thrown_message<InputError>([&] { AtomicOutputFile output(dir / "out", true); }),
                 {(dir / "out").string(), "is a directory"});
  CHECK(listing(dir.path()) == Names{"out"});
}

TEST_CASE("sync_path of a missing path is an IoError naming it") {
  TempDir dir;
  check_mentions(thrown_message<IoError>([&] { sync_path(dir / "absent"); }),
                 {(dir / "absent").string()});
  sync_path(dir.path());  // directories can be synced
}

// ---- outputs never overlap inputs -------------------------------------------------------------

TEST_CASE("an output equal to, inside, or around an input is refused") {
  TempDir dir;
  TempDir elsewhere;
  const auto input = dir / "model";
  fs::create_directories(input / "sub");
  const std::vector<fs::path> inputs = {elsewhere / "other-input", input};

  struct Case {
    fs::path output;
    const char* why;
  };
  const Case refused[] = {
      {input, "the input itself"},
      {dir.path() / "model/", "the input with a trailing slash"},
      {input / "out", "inside the input"},
      {input / "sub" / "deeper" / "out", "deep inside the input, not yet existing"},
      {dir / "x" / ".." / "model", "the input through '..'"},
      {dir.path(), "the input's parent (the input would be inside the output)"},
  };
  for (const auto& [output, why] : refused) {
    INFO(std::string(why) << ": " << output.string());
    const auto message =
        thrown_message<InputError>([&] { check_output_outside_inputs(output, inputs); });
    check_mentions(message, {output.string(), input.string(), "overlaps the input"});
  }
}

TEST_CASE("an output through a symbolic link to the input is refused") {
  TempDir dir;
  const auto input = dir / "model";
  fs::create_directory(input);
  fs::create_directory_symlink(input, dir / "link");
  const std::vector<fs::path> inputs = {input};
  CHECK_THROWS_AS(check_output_outside_inputs(dir / "link", inputs), InputError);
  CHECK_THROWS_AS(check_output_outside_inputs(dir / "link" / "out", inputs), InputError);
}

TEST_CASE("an output beside the input is accepted, even when its name extends the input's") {
  TempDir dir;
  const auto input = dir / "model";
  fs::create_directory(input);
  const std::vector<fs::path> inputs = {input};
  CHECK_NOTHROW(check_output_outside_inputs(dir / "model-sliced", inputs));
  CHECK_NOTHROW(check_output_outside_inputs(dir / "model2", inputs));
  CHECK_NOTHROW(check_output_outside_inputs(dir / "elsewhere" / "model", inputs));
}

TEST_CASE("a relative output path is compared as an absolute one") {
  TempDir dir;
  const auto input = dir / "model";
  fs::create_directory(input);
  const auto previous = fs::current_path();
  fs::current_path(dir.path());
  const std::vector<fs::path> inputs = {input};
  CHECK_THROWS_AS(check_output_outside_inputs("model/out", inputs), InputError);
  CHECK_THROWS_AS(check_output_outside_inputs(".", inputs), InputError);
  CHECK_NOTHROW(check_output_outside_inputs("sliced", inputs));
  fs::current_path(previous);
}

}  // namespace
}  // namespace moeslice
