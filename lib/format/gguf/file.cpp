// GgufFile: the bounded parse of a GGUF header (metadata, tensor infos) and the validation of
// every tensor's place in the data section.
#include "format/gguf/file.h"

#include <algorithm>
#include <limits>
#include <set>

#include <fmt/core.h>

#include "common/error.h"
#include "common/excerpt.h"
#include "common/ggml_type.h"

namespace moeslice {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
  throw FormatError(fmt::format("{}: invalid GGUF file: {}", path.string(), what));
}

// ggml type ids that once existed and are no longer read by llama.cpp, by name.
std::string_view retired_ggml_type(uint32_t id) {
  switch (id) {
    case 4:
      return "Q4_2";
    case 5:
      return "Q4_3";
    case 31:
      return "Q4_0_4_4";
    case 32:
      return "Q4_0_4_8";
    case 33:
      return "Q4_0_8_8";
    case 36:
      return "IQ4_NL_4_4";
    case 37:
      return "IQ4_NL_4_8";
    case 38:
      return "IQ4_NL_8_8";
    default:
      return {};
  }
}

// Sequential little-endian reads, each checked against the bytes left.
class Reader {
 public:
  Reader(const fs::path& path, std::span<const std::byte> bytes) : path_(path), bytes_(bytes) {}

  uint64_t offset() const { return offset_; }
  uint64_t remaining() const { return bytes_.size() - offset_; }
  const fs::path& path() const { return path_; }

  void need(uint64_t count, const std::string& field) const {
    if (count > remaining())
      fail(path_, fmt::format("{} at offset {} needs {} bytes, but the file ends at {}; the file "
                              "is truncated or corrupt",
                              field, offset_, count, bytes_.size()));
  }

  uint64_t number(uint64_t size, const std::string& field) {
    need(size, field);
    uint64_t value = 0;
    for (uint64_t i = size; i-- > 0;)
      value = value << 8 | static_cast<uint8_t>(bytes_[offset_ + i]);
    offset_ += size;
    return value;
  }
  uint32_t u32(const std::string& field) { return static_cast<uint32_t>(number(4, field)); }
  uint64_t u64(const std::string& field) { return number(8, field); }

  std::string raw(uint64_t count, const std::string& field) {
    need(count, field);
    std::string text(reinterpret_cast<const char*>(bytes_.data() + offset_), count);
    offset_ += count;
    return text;
  }

  std::string string(const std::string& field, uint64_t limit) {
    const uint64_t length = u64(field + " length");
    if (length > limit)
      fail(path_,
           fmt::format("{} is {} bytes long, more than the limit of {}", field, length, limit));
    return raw(length, field);
  }

 private:
  const fs::path& path_;
  std::span<const std::byte> bytes_;
  uint64_t offset_ = 0;
};

// The least number of bytes one element of an array of `type` takes in the file.
uint64_t min_element_bytes(GgufType type) {
  if (type == GgufType::kString) return 8;
  if (type == GgufType::kArray) return 12;
  return gguf_scalar_bytes(type);
}

class MetadataParser {
 public:
  explicit MetadataParser(Reader& reader) : reader_(reader) {}

  GgufType type(const std::string& field) {
    const uint32_t id = reader_.u32(field + " type");
    const auto type = gguf_type(id);
    if (!type)
      fail(reader_.path(),
           fmt::format("{} has value type {}, expected 0 to 12 (UINT8 ... FLOAT64)", field, id));
    return *type;
  }

  GgufValue value(GgufType type, const std::string& field, int depth) {
    if (type == GgufType::kString)
      return GgufValue::of_string(reader_.string(field, kMaxGgufStringBytes));
    if (type != GgufType::kArray)
      return GgufValue::scalar(type, reader_.number(gguf_scalar_bytes(type), field));
    const GgufType element_type = this->type(field + " element");
    const uint64_t count = reader_.u64(field + " element count");
    if (count > kMaxGgufArrayElements)
      fail(reader_.path(), fmt::format("{} holds {} elements, more than the limit of {}", field,
                                       count, kMaxGgufArrayElements));
    const uint64_t least = count * min_element_bytes(element_type);
    if (least > reader_.remaining())
      fail(reader_.path(),
           fmt::format("{} holds {} {} elements, at least {} bytes, but only {} bytes are left in "
                       "the file; the file is truncated or corrupt",
                       field, count, gguf_type_name(element_type), least, reader_.remaining()));
    if (element_type == GgufType::kString) {
      std::vector<std::string> strings;
      strings.reserve(count);
      for (uint64_t i = 0; i < count; ++i)
        strings.push_back(
            reader_.string(fmt::format("{} element {}", field, i), kMaxGgufStringBytes));
      return GgufValue::string_array(std::move(strings));
    }
    if (element_type == GgufType::kArray) {
      if (depth + 1 >= kMaxGgufArrayDepth)
        fail(reader_.path(),
             fmt::format("{} nests arrays deeper than the limit of {}", field, kMaxGgufArrayDepth));
      nested_ += count;
      if (nested_ > kMaxGgufNestedArrays)
        fail(reader_.path(), fmt::format("{} brings the file's arrays inside arrays to {}, more "
                                         "than the limit of {}",
                                         field, nested_, kMaxGgufNestedArrays));
      std::vector<GgufValue> arrays;
      arrays.reserve(count);
      for (uint64_t i = 0; i < count; ++i)
        arrays.push_back(
            value(GgufType::kArray, fmt::format("{} element {}", field, i), depth + 1));
      return GgufValue::array_array(std::move(arrays));
    }
    return GgufValue::scalar_array(element_type, reader_.raw(least, field));
  }

 private:
  Reader& reader_;
  uint64_t nested_ = 0;
};

}  // namespace

std::shared_ptr<const GgufFile> GgufFile::open(const fs::path& path) {
  std::shared_ptr<GgufFile> file(new GgufFile(MappedFile(path)));
  file->parse();
  return file;
}

void GgufFile::parse() {
  const fs::path& path = file_.path();
  const auto bytes = file_.bytes();
  Reader reader(path, bytes);
  if (bytes.size() < 4)
    fail(path, fmt::format("file is {} bytes, too short for the magic 'GGUF'", bytes.size()));
  const uint32_t magic = reader.u32("magic");
  if (magic != kGgufMagic)
    fail(path,
         fmt::format("magic is '{}', expected 'GGUF'",
                     excerpt(std::string_view(reinterpret_cast<const char*>(bytes.data()), 4))));
  version_ = reader.u32("version");
  if (version_ == 1) fail(path, "version is 1, which llama.cpp no longer reads; expected 2 or 3");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffffu) == 0)
      fail(path, fmt::format("version is 0x{:08x}, which looks like a big-endian file; only "
                             "little-endian GGUF files are read",
                             version_));
    fail(path, fmt::format("version is {}, expected 2 or 3", version_));
  }
  const uint64_t tensor_count = reader.u64("tensor count");
  const uint64_t key_count = reader.u64("metadata key count");
  if (tensor_count > kMaxGgufTensors)
    fail(path, fmt::format("tensor count is {}, more than the limit of {}", tensor_count,
                           kMaxGgufTensors));
  if (key_count > kMaxGgufMetadataKeys)
    fail(path, fmt::format("metadata key count is {}, more than the limit of {}", key_count,
                           kMaxGgufMetadataKeys));
  // A key takes at least 12 bytes (length and type), a tensor info at least 24.
  if (key_count * 12 + tensor_count * 24 > reader.remaining())
    fail(path, fmt::format("{} metadata keys and {} tensor infos need at least {} bytes, but the "
                           "file has {} after the counts; the file is truncated or corrupt",
                           key_count, tensor_count, key_count * 12 + tensor_count * 24,
                           reader.remaining()));

  MetadataParser values(reader);
  for (uint64_t i = 0; i < key_count; ++i) {
    const std::string key = reader.string(fmt::format("metadata key #{}", i), kMaxGgufKeyBytes);
    const std::string field = fmt::format("metadata key '{}'", excerpt(key));
    if (metadata_.contains(key)) fail(path, fmt::format("{} appears twice", field));
    const GgufType type = values.type(field);
    metadata_.set(key, values.value(type, field, 0));
  }
  if (const GgufValue* alignment = metadata_.find("general.alignment")) {
    if (alignment->type() != GgufType::kU32)
      fail(path, fmt::format("metadata key 'general.alignment' holds {}, expected a UINT32",
                             alignment->describe()));
    alignment_ = static_cast<uint32_t>(*alignment->as_uint());
    if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
      fail(path, fmt::format("metadata key 'general.alignment' is {}, expected a power of two",
                             alignment_));
  }

  std::set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo info;
    const std::string name_field = fmt::format("tensor #{} name", i);
    const uint64_t name_length = reader.u64(name_field + " length");
    if (name_length > kMaxGgufTensorNameBytes)
      fail(path, fmt::format("{} is {} bytes long, more than llama.cpp's limit of {}", name_field,
                             name_length, kMaxGgufTensorNameBytes));
    info.name = reader.raw(name_length, name_field);
    const std::string field = fmt::format("tensor '{}'", excerpt(info.name));
    if (!names.insert(info.name).second) fail(path, fmt::format("{} appears twice", field));
    const uint32_t dims = reader.u32(field + " n_dims");
    if (dims > kMaxGgufDims)
      fail(path, fmt::format("{} has n_dims {}, more than ggml's maximum of {}", field, dims,
                             kMaxGgufDims));
    for (uint32_t d = 0; d < dims; ++d) {
      info.ne.push_back(reader.u64(fmt::format("{} ne[{}]", field, d)));
      if (info.ne.back() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(path,
             fmt::format("{} has ne[{}] = {}, more than INT64_MAX", field, d, info.ne.back()));
    }
    info.ggml_type = reader.u32(field + " type");
    const auto type = ggml_type(info.ggml_type);
    if (!type) {
      const std::string_view retired = retired_ggml_type(info.ggml_type);
      if (!retired.empty())
        fail(path, fmt::format("{} has ggml type {} ({}), which GGUF files no longer hold", field,
                               info.ggml_type, retired));
      fail(path, fmt::format("{} has unknown ggml type {} (known: {})", field, info.ggml_type,
                             all_ggml_type_names()));
    }
    info.offset = reader.u64(field + " offset");

    TensorView view;
    view.name = info.name;
    view.dtype = type->dtype;
    for (auto it = info.ne.rbegin(); it != info.ne.rend(); ++it)
      view.shape.push_back(static_cast<int64_t>(*it));
    const auto size = tensor_byte_size(view.dtype, view.shape);
    if (!size) {
      const auto block = dtype_block(view.dtype);
      if (block && !info.ne.empty() && info.ne[0] % block->elements != 0)
        fail(path, fmt::format("{} has ne[0] = {}, which is not a multiple of the {} elements of "
                               "a {} block",
                               field, info.ne[0], block->elements, ggml_type_name(*type)));
      if (block && info.ne.empty())
        fail(path,
             fmt::format("{} is a {} scalar (n_dims 0), but {} stores whole blocks of {} "
                         "elements",
                         field, ggml_type_name(*type), ggml_type_name(*type), block->elements));
      fail(path, fmt::format("{}: the size of {} {} overflows 64 bits", field,
                             ggml_type_name(*type), view.shape_string()));
    }
    info.bytes = *size;
    infos_.push_back(std::move(info));
    tensors_.emplace(infos_.back().name, std::move(view));
  }

  const uint64_t header_end = reader.offset();
  // header_end is at most the file size, far below 2^64 - 2^32: the padding cannot overflow.
  data_start_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (const GgufTensorInfo& info : infos_) {
    const std::string field = fmt::format("tensor '{}'", excerpt(info.name));
    if (info.offset % alignment_ != 0)
      fail(path, fmt::format("{} has offset {}, which is not a multiple of the alignment {}", field,
                             info.offset, alignment_));
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(data_start_, info.offset, &begin) ||
        __builtin_add_overflow(begin, info.bytes, &end) || end > bytes.size())
      fail(path,
           fmt::format("{} needs {} bytes at data offset {} (file offset {}), past the end "
                       "of the file ({} bytes); the file is truncated or corrupt",
                       field, info.bytes, info.offset,
                       begin < data_start_ ? std::string("beyond 2^64") : std::to_string(begin),
                       bytes.size()));
    ranges.push_back({info.offset, info.offset + info.bytes, &info.name});
    tensors_.at(info.name).bytes = bytes.subspan(begin, info.bytes);
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Range* previous = nullptr;
  for (const Range& range : ranges) {
    if (range.begin == range.end) continue;
    if (previous != nullptr && range.begin < previous->end)
      fail(path, fmt::format("tensor '{}' (data bytes {} to {}) overlaps tensor '{}' (data bytes "
                             "{} to {})",
                             excerpt(*range.name), range.begin, range.end, excerpt(*previous->name),
                             previous->begin, previous->end));
    previous = &range;
  }
}

}  // namespace moeslice
