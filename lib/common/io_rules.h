// The one rule for what a command reads and what it writes, checked before any work:
//   - every file or directory a command reads is an input; inputs that are read whole (plans,
//     usage files, configs, tokenizers) must be regular files, opened without blocking, and
//     JSON-ish ones are bounded in size;
//   - an output must not be, contain, or lie inside an input, nor may the names its writer
//     creates beside it (staging entries, OUT.partial) be an input; paths are compared after
//     resolving symbolic links and by device and inode;
//   - an output, when it exists, is a regular file or a directory (never a device, FIFO or
//     socket, even with --force), and its directory exists and is writable.
// atomic_output.h writes outputs under these rules; apps/command_io.h applies them per command.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace moeslice {

// Largest JSON file read whole (config.json, index, plan, comparison file, tokenizer.json):
// the biggest real ones are tokenizers of a few tens of MB.
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t{256} << 20;

// What kind of thing a path names, for messages: "a FIFO", "a character device", "a directory".
std::string_view file_kind_name(unsigned mode);

// Whether an input `path` exists. Throws InputError "cannot read PATH: REASON" when that cannot
// be told (a symbolic link loop, a directory on the way without search permission), which
// std::filesystem::exists() reports as an exception of its own.
bool input_exists(const std::filesystem::path& path);

// Opens `path` read-only without ever blocking (a FIFO without a writer would block open(2)),
// and returns the descriptor when it is a regular file. Throws InputError naming the path and
// what it is otherwise ("plan /tmp/p is a FIFO; expected a regular file"). `role` says what the
// file is for ("plan", "--keep", "tokenizer"); empty for none. When `stream_ok`, an anonymous
// pipe (stdin, the shell's <(...)) and /dev/null (empty) are accepted too: they cannot block at
// open, never grow without end, and cannot be replaced by an output.
int open_input_file(const std::filesystem::path& path, std::string_view role,
                    bool stream_ok = false);

// Refuses (InputError) what open_input_file() refuses, without keeping the file open.
void check_input_file(const std::filesystem::path& path, std::string_view role,
                      bool stream_ok = false);

// The whole content of a regular file of at most `max_bytes` (InputError naming the file and the
// limit when larger).
std::string read_input_file(const std::filesystem::path& path, uint64_t max_bytes,
                            std::string_view role = {});

// Refuses (InputError) an output path equal to, inside, or around any of `inputs`, or an input
// named like the output's staging entries (.NAME.tmp-*), so a command never writes into or
// deletes what it reads.
void check_output_outside_inputs(const std::filesystem::path& output,
                                 std::span<const std::filesystem::path> inputs);

// Refuses (InputError "output ... already exists (use --force to replace it)") an existing
// `output` unless `overwrite`, and always one that is not a regular file or directory.
void check_output_replaceable(const std::filesystem::path& output, bool overwrite);

// Refuses (InputError) an empty output path, and one whose directory is missing or not
// writable.
void check_output_location(const std::filesystem::path& output);

// All of the above, as a command makes them before doing any work: fail before the hours of
// compute, not after.
void check_new_output(const std::filesystem::path& output,
                      std::span<const std::filesystem::path> inputs, bool overwrite);

}  // namespace moeslice
