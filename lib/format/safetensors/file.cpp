// SafetensorsFile: header parsing and validation.
#include "format/safetensors/file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/excerpt.h"
#include "common/json_parse.h"

namespace moeslice {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& what) {
  throw FormatError(fmt::format("{}: invalid safetensors file: {}", path.string(), what));
}

// serde_json refuses JSON nested this deep (its recursion limit of 128, counting the header object
// itself), so the header's limit is below the kMaxJsonDepth of other JSON; parse_json refuses it
// before parsing, which also keeps a header of 100 MB of '[' from building a huge DOM.
constexpr int kMaxHeaderNesting = 127;

// Parses the header JSON exactly as strictly as serde_json does. nlohmann is more lenient in four
// ways, refused here: it skips a UTF-8 byte order mark, it stops at a NUL byte as if the input
// ended there (so "{}\0garbage" would parse), it has no nesting limit (parse_json's), and it keeps
// the last of duplicate keys (serde refuses a duplicate struct field; a duplicate tensor name would
// make two tensors one).
json parse_header_json(const std::filesystem::path& path, std::string_view text) {
  if (text.starts_with("\xef\xbb\xbf"))
    fail(path, "header starts with a UTF-8 byte order mark, expected '{' or JSON whitespace");
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail(path, fmt::format("header holds a NUL byte at offset {}, expected JSON padded with "
                           "spaces",
                           nul));
  std::vector<std::set<std::string>> open_objects;
  // The callback throws FormatError, which nlohmann lets through; the partial DOM is freed.
  json::parser_callback_t watch = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) {
        if (depth == 1)
          fail(path, fmt::format("tensor '{}' appears twice in the header", excerpt(key)));
        fail(path,
             fmt::format("key '{}' appears twice in the same object of the header", excerpt(key)));
      }
    }
    return true;
  };
  json header;
  try {
    header = parse_json(text, fmt::format("{}: invalid safetensors file: header", path.string()),
                        kMaxHeaderNesting, watch);
  } catch (const JsonSyntaxError& error) {
    fail(path, fmt::format("header is not valid UTF-8 JSON ({})", error.detail()));
  }
  if (!header.is_object())
    fail(path, fmt::format("header must be a JSON object, found {}", header.type_name()));
  return header;
}

uint64_t read_u64_le(const std::byte* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = value << 8 | static_cast<uint8_t>(bytes[i]);
  return value;
}

// A JSON number that is a non-negative integer fitting in 64 bits.
std::optional<uint64_t> as_unsigned(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0)
    return static_cast<uint64_t>(value.get<int64_t>());
  return std::nullopt;
}

}  // namespace

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(MappedFile(path)));
  file->parse();
  return file;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::parse() {
  const auto& path = file_.path();
  const auto bytes = file_.bytes();
  if (bytes.size() < 8)
    fail(path,
         fmt::format("file is {} bytes, expected at least 8 (the header length)", bytes.size()));
  const uint64_t header_length = read_u64_le(bytes.data());
  if (header_length > kMaxSafetensorsHeaderBytes)
    fail(path, fmt::format("header length {} exceeds the limit of {} bytes", header_length,
                           kMaxSafetensorsHeaderBytes));
  if (header_length > bytes.size() - 8)
    fail(path, fmt::format("header length {} runs past the end of the file ({} bytes after the "
                           "length field); the file is truncated or corrupt",
                           header_length, bytes.size() - 8));
  data_start_ = 8 + header_length;
  const std::string_view header_text(reinterpret_cast<const char*>(bytes.data() + 8),
                                     header_length);
  const json header = parse_header_json(path, header_text);

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  const uint64_t buffer_size = bytes.size() - data_start_;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (entry.is_null()) continue;
      if (!entry.is_object())
        fail(path,
             fmt::format("__metadata__ must be an object of strings, found {}", entry.type_name()));
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string())
          fail(path, fmt::format("__metadata__ value of '{}' must be a string, found {}", key,
                                 value.type_name()));
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object())
      fail(path,
           fmt::format("tensor '{}': entry must be an object, found {}", name, entry.type_name()));
    TensorView view;
    view.name = name;
    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string())
      fail(path, fmt::format("tensor '{}': expected a string field 'dtype', found {}", name,
                             dtype_it == entry.end() ? "none" : dtype_it->type_name()));
    const auto dtype = parse_dtype(dtype_it->get<std::string>());
    if (!dtype)
      fail(path, fmt::format("tensor '{}': unknown dtype '{}' (known: {})", name,
                             dtype_it->get<std::string>(), all_dtype_names()));
    view.dtype = *dtype;
    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array())
      fail(path, fmt::format("tensor '{}': expected an array field 'shape', found {}", name,
                             shape_it == entry.end() ? "none" : shape_it->type_name()));
    for (const auto& extent : *shape_it) {
      const auto value = as_unsigned(extent);
      if (!value || *value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(path, fmt::format("tensor '{}': shape {} must hold non-negative integers", name,
                               json_excerpt(*shape_it)));
      view.shape.push_back(static_cast<int64_t>(*value));
    }
    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !as_unsigned((*offsets_it)[0]) || !as_unsigned((*offsets_it)[1]))
      fail(path, fmt::format("tensor '{}': 'data_offsets' must be two non-negative integers, "
                             "found {}",
                             name, offsets_it == entry.end() ? "none" : json_excerpt(*offsets_it)));
    const uint64_t begin = *as_unsigned((*offsets_it)[0]);
    const uint64_t end = *as_unsigned((*offsets_it)[1]);
    if (end < begin)
      fail(path, fmt::format("tensor '{}': data_offsets [{}, {}] end before they begin", name,
                             begin, end));
    const auto expected = tensor_byte_size(view.dtype, view.shape);
    if (!expected) {
      const auto bits = tensor_bit_count(view.dtype, view.shape);
      if (bits)
        fail(path, fmt::format("tensor '{}': {} {} is {} bits, expected a whole number of bytes",
                               name, dtype_name(view.dtype), view.shape_string(), *bits));
      fail(path, fmt::format("tensor '{}': the size of {} {} overflows 64 bits", name,
                             dtype_name(view.dtype), view.shape_string()));
    }
    if (end - begin != *expected)
      fail(path, fmt::format("tensor '{}': {} {} needs {} bytes, data_offsets [{}, {}] hold {}",
                             name, dtype_name(view.dtype), view.shape_string(), *expected, begin,
                             end, end - begin));
    if (end > buffer_size)
      fail(path, fmt::format("tensor '{}': data_offsets [{}, {}] run past the data buffer of {} "
                             "bytes; the file is truncated or corrupt",
                             name, begin, end, buffer_size));
    view.bytes = bytes.subspan(data_start_ + begin, end - begin);
    auto [it, inserted] = tensors_.emplace(name, std::move(view));
    ranges.push_back({begin, end, &it->first});
  }

  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t position = 0;
  for (const auto& range : ranges) {
    if (range.begin != position)
      fail(path, fmt::format("tensor '{}' starts at data offset {}, expected {} ({})", *range.name,
                             range.begin, position,
                             range.begin < position ? "it overlaps the previous tensor"
                                                    : "there is a gap before it"));
    position = range.end;
  }
  if (position != buffer_size)
    fail(path, fmt::format("the tensors cover {} bytes of the data buffer, but the file holds {} "
                           "bytes after the header ({})",
                           position, buffer_size,
                           position < buffer_size ? "trailing bytes" : "truncated"));
}

}  // namespace moeslice
