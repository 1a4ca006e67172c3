// Byte sizes as people write them ("5GB", "500MB", "2GiB") and read them ("1.23 GB"), and the
// largest shard a checkpoint writer produces unless told otherwise.
#pragma once

#include <cstdint>
#include <string>

namespace moeslice {

// The default largest shard of every command and library writer: 5 GB, as Hugging Face's
// save_pretrained uses.
inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

// Parses "5GB", "500MB", "2GiB", "1000000" into bytes (decimal units as Hugging Face does, binary
// with "i"). Throws InputError naming the text.
uint64_t parse_byte_size(const std::string& text);

// The shortest text parse_byte_size reads back as exactly `bytes`, in the largest decimal unit that
// divides it: "5GB", "500MB", "1234B". For flag defaults and their help.
std::string byte_size_flag(uint64_t bytes);

// "1.23 GB"
std::string format_byte_size(uint64_t bytes);

}  // namespace moeslice
