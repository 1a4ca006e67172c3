// Inputs that change while a command runs: the table naming mapped files for the SIGBUS handler
// (common/mapping_table.h), and TensorStore::check_unchanged() finding a shard rewritten in place
// (modification time), truncated (size) or replaced (inode) after it was opened.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/time.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/mapped_file.h"
#include "common/mapping_table.h"
#include "format/safetensors/checkpoint.h"
#include "format/safetensors/writer.h"
#include "test_util.h"

namespace moeslice {
namespace {

namespace fs = std::filesystem;
using test::check_mentions;
using test::TempDir;
using test::thrown_message;

// A one-tensor checkpoint in `dir`.
fs::path small_checkpoint(const fs::path& dir) {
  fs::create_directories(dir);
  test::write_file(dir / kConfigFileName, R"({"model_type":"test"})");
  const std::vector<TensorSource> tensors = {
      TensorSource::from_bytes("w", DType::F32, {4, 4}, test::counting_bytes(64))};
  write_checkpoint_tensors(dir, tensors, {}, uint64_t{1} << 30);
  return dir / kSingleFileName;
}

// Sets a file's modification time to `seconds` since the epoch, keeping its bytes.
void set_mtime(const fs::path& path, long seconds) {
  const struct timeval times[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::utimes(path.c_str(), times) == 0);
}

TEST_CASE("a mapped file is named by the addresses it covers, and forgotten when unmapped") {
  TempDir dir;
  test::write_file(dir.path() / "a.bin", std::string(10000, 'a'));
  const char* inside = nullptr;
  {
    MappedFile file(dir.path() / "a.bin");
    inside = reinterpret_cast<const char*>(file.bytes().data());
    REQUIRE(mapped_path_at(inside) != nullptr);
    CHECK(std::string(mapped_path_at(inside + 9999)) == (dir.path() / "a.bin").string());
    CHECK(mapped_path_at(inside + 10000 + 65536) == nullptr);
    const MappedFile moved = std::move(file);
    CHECK(mapped_path_at(inside) != nullptr);  // the mapping moved, its name with it
  }
  CHECK(mapped_path_at(inside) == nullptr);
}

TEST_CASE("the table keeps the end of a long path; a null range is not registered") {
  const std::string long_path = "/" + std::string(2000, 'x') + "/model.safetensors";
  static const char block[64] = {};
  const int slot = register_mapping(block, sizeof block, long_path);
  REQUIRE(slot >= 0);
  const std::string named = mapped_path_at(block + 1);
  CHECK(named.size() == kMaxNamedPathBytes - 1);
  CHECK(named.ends_with("/model.safetensors"));
  unregister_mapping(slot);
  CHECK(mapped_path_at(block) == nullptr);
  CHECK(register_mapping(nullptr, 10, "x") == -1);
}

TEST_CASE("an unchanged checkpoint passes check_unchanged") {
  TempDir dir;
  small_checkpoint(dir.path() / "m");
  const auto checkpoint = SafetensorsCheckpoint::open(dir.path() / "m");
  CHECK_NOTHROW(checkpoint->check_unchanged());
}

TEST_CASE("a shard rewritten in place (same size, new modification time) is named") {
  TempDir dir;
  const fs::path shard = small_checkpoint(dir.path() / "m");
  set_mtime(shard, 1'000'000'000);
  const auto checkpoint = SafetensorsCheckpoint::open(dir.path() / "m");
  set_mtime(shard, 1'000'000'100);
  check_mentions(
      thrown_message<InputError>([&] { checkpoint->check_unchanged(); }),
      {shard.string(), "changed while being read", "modification time", "nothing was written"});
}

TEST_CASE("a truncated shard is named with both sizes") {
  TempDir dir;
  const fs::path shard = small_checkpoint(dir.path() / "m");
  const auto checkpoint = SafetensorsCheckpoint::open(dir.path() / "m");
  const auto size = fs::file_size(shard);
  fs::resize_file(shard, size - 16);
  check_mentions(thrown_message<InputError>([&] { checkpoint->check_unchanged(); }),
                 {shard.string(), std::to_string(size), std::to_string(size - 16)});
}

TEST_CASE("a shard replaced by another file, or removed, is named") {
  TempDir dir;
  const fs::path shard = small_checkpoint(dir.path() / "m");
  const auto checkpoint = SafetensorsCheckpoint::open(dir.path() / "m");
  fs::copy_file(shard, dir.path() / "copy");
  fs::rename(dir.path() / "copy", shard);
  check_mentions(thrown_message<InputError>([&] { checkpoint->check_unchanged(); }),
                 {shard.string(), "replaced by another file"});
  fs::remove(shard);
  check_mentions(thrown_message<InputError>([&] { checkpoint->check_unchanged(); }),
                 {shard.string(), "changed while being read"});
}

}  // namespace
}  // namespace moeslice
