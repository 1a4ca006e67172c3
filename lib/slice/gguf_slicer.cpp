// Carrying out GGUF slices and unslices: tensor sources, split sizing, the read-back check and
// the moeslice.* keys checked against the full model.
#include "slice/gguf_slicer.h"

#include <algorithm>
#include <cstring>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "common/io_rules.h"
#include "format/gguf/file.h"
#include "format/gguf/writer.h"
#include "format/tensor_store.h"
#include "slice/expert_rows.h"

namespace moeslice {
namespace fs = std::filesystem;

namespace {

std::vector<const TensorView*> tensors_in_file_order(const GgufModel& model) {
  std::vector<const TensorView*> tensors;
  for (const std::string& name : model.tensor_order()) tensors.push_back(&model.tensor(name));
  return tensors;
}

// The output's split parts: as asked, else no larger than the input's largest part.
std::optional<uint64_t> part_bytes(const GgufModel& model, const GgufSliceOptions& options) {
  if (options.max_part_bytes || model.parts().size() < 2) return options.max_part_bytes;
  uint64_t largest = 0;
  for (const auto& part : model.parts()) {
    uint64_t bytes = 0;
    for (const GgufTensorInfo& info : part->tensor_infos()) bytes += info.bytes;
    largest = std::max(largest, bytes);
  }
  return largest;
}

// Refuses an output (or its split parts) that would be one of the inputs.
void check_output_path(const fs::path& out, const std::vector<fs::path>& inputs) {
  check_output_outside_inputs(out, inputs);
  fs::path prefix = out;
  if (prefix.extension() == ".gguf") prefix.replace_extension();
  for (const fs::path& input : inputs)
    if (const auto split = parse_gguf_split_path(input);
        split && normalized_absolute_path(split->prefix) == normalized_absolute_path(prefix))
      throw InputError(fmt::format("output {} would write split parts named like the input {}",
                                   out.string(), input.string()));
}

// The kept rows of a stacked tensor: one file range per row (the copy engine joins neighbours),
// produce() where the kernel will not copy.
TensorSource cut_tensor(const GgufModel& model, const GgufPlannedTensor& planned) {
  const TensorView& view = *planned.source;
  TensorSource source = kept_rows(model, view, planned.kept_rows);
  if (const auto range = model.file_range(view)) {
    const uint64_t row_bytes = view.bytes.size() / static_cast<uint64_t>(view.shape.front());
    for (const int32_t row : planned.kept_rows)
      source.file_ranges.push_back(
          {range->path, range->offset + static_cast<uint64_t>(row) * row_bytes, row_bytes});
  }
  return source;
}

// Reads the staged parts back with the strict reader: the tensors in order with the planned
// types and shapes, each one's bytes equal to its source rows, the metadata the plan's.
void check_written(const std::vector<fs::path>& staged, const GgufSlicePlan& plan,
                   const GgufModel& model) {
  size_t next = 0;
  auto fail = [](const std::string& what) {
    return Error(fmt::format("the slice does not read back as written: {}", what));
  };
  for (size_t p = 0; p < staged.size(); ++p) {
    const auto file = GgufFile::open(staged[p]);
    if (p == 0)
      for (const auto& [key, value] : plan.metadata.entries())
        if (!key.starts_with("split.") &&
            !(file->metadata().find(key) && *file->metadata().find(key) == value))
          throw fail(fmt::format("metadata key '{}'", key));
    for (const GgufTensorInfo& info : file->tensor_infos()) {
      if (next >= plan.tensors.size()) throw fail(fmt::format("extra tensor '{}'", info.name));
      const GgufPlannedTensor& planned = plan.tensors[next++];
      const TensorView& source = *planned.source;
      const TensorView& written = file->tensors().at(info.name);
      if (info.name != source.name || written.dtype != source.dtype ||
          written.shape != planned.output_shape || written.bytes.size() != planned.output_bytes)
        throw fail(fmt::format("tensor '{}' where '{}' {} was planned", info.name, source.name,
                               format_shape(planned.output_shape)));
      bool same = true;
      if (planned.fate == TensorFate::kCutAlongExperts) {
        const size_t row = source.bytes.size() / static_cast<size_t>(source.shape.front());
        for (size_t i = 0; i < planned.kept_rows.size() && same; ++i)
          same = std::memcmp(written.bytes.data() + i * row,
                             source.bytes.data() + static_cast<size_t>(planned.kept_rows[i]) * row,
                             row) == 0;
      } else {
        same = std::memcmp(written.bytes.data(), source.bytes.data(), source.bytes.size()) == 0;
      }
      // Neither input nor output stays resident: the check touches every byte of the slice.
      model.release_pages(source);
      release_mapped_pages(file->mapped(), written, 0, written.bytes.size());
      if (!same)
        throw fail(fmt::format("the bytes of tensor '{}' differ from the source's", info.name));
    }
  }
  if (next != plan.tensors.size())
    throw fail(fmt::format("{} of {} tensors written", next, plan.tensors.size()));
}

std::vector<std::vector<int32_t>> experts_kept_of(const GgufModel& sliced) {
  auto kept = recorded_experts_kept(sliced.metadata());
  if (!kept)
    throw InputError(fmt::format(
        "{}: metadata key '{}' is absent: not a GGUF sliced by moeslice (or its keys were "
        "removed), so its experts' original ids are unknown",
        sliced.path().string(), kGgufSliceExpertsKept));
  return std::move(*kept);
}

}  // namespace

GgufSliceReport slice_gguf(const GgufModel& model, const nlohmann::json& plan_document,
                           const std::string& plan_source, const fs::path& out,
                           const GgufSliceOptions& options) {
  check_output_path(out, model.input_paths());
  const std::vector<const TensorView*> tensors = tensors_in_file_order(model);
  const GgufMetadata& metadata = model.metadata();
  const GgufSlicePlan plan =
      plan_gguf_slice(metadata, tensors, plan_document, plan_source,
                      {model.path().filename().string(), gguf_fingerprint(metadata, tensors)});

  GgufSliceReport report;
  static_cast<GgufSliceSummary&>(report) = plan.summary;
  std::vector<TensorSource> sources;
  sources.reserve(plan.tensors.size());
  for (const GgufPlannedTensor& planned : plan.tensors) {
    if (planned.fate == TensorFate::kCutAlongExperts) {
      sources.push_back(cut_tensor(model, planned));
      ++report.tensors_cut;
    } else {
      sources.push_back(TensorSource::copy_of(model, *planned.source));
      ++report.tensors_copied;
    }
  }
  GgufWriteOptions write;
  write.max_part_bytes = part_bytes(model, options);
  write.overwrite = options.overwrite;
  // The check reads the output back: keep it in the page cache then.
  write.copy = options.verify ? RangeCopy::kCached : RangeCopy::kDirect;
  if (options.verify)
    write.check_before_commit = [&](const std::vector<fs::path>& staged) {
      check_written(staged, plan, model);
    };
  report.files = write_gguf_model(out, plan.metadata, sources, write);
  report.verified = options.verify;
  return report;
}

GgufUnsliceReport unslice_gguf(const GgufModel& full, const GgufModel& sliced, const fs::path& out,
                               const GgufSliceOptions& options) {
  std::vector<fs::path> inputs = full.input_paths();
  for (const fs::path& path : sliced.input_paths()) inputs.push_back(path);
  check_output_path(out, inputs);
  const GgufMetadata& metadata = full.metadata();
  const GgufMetadata& slice_metadata = sliced.metadata();
  const std::string slice_file = sliced.path().string();
  const std::string arch = metadata.architecture();
  const std::vector<const TensorView*> tensors = tensors_in_file_order(full);

  // The slice must have been cut from this very model.
  if (slice_metadata.architecture() != arch)
    throw InputError(fmt::format("{} is a '{}' model but {} is '{}'", slice_file,
                                 slice_metadata.architecture(), full.path().string(), arch));
  const auto recorded_count = slice_metadata.get_uint(kGgufSliceOriginalExpertCount);
  const uint64_t experts = metadata.arch_uint("expert_count").value_or(0);
  if (recorded_count && *recorded_count != experts)
    throw InputError(fmt::format(
        "{}: metadata key '{}' says the slice was cut from a model with {} experts, but {} has "
        "'{}.expert_count' = {}; give the model it was sliced from",
        slice_file, kGgufSliceOriginalExpertCount, *recorded_count, full.path().string(), arch,
        experts));
  const std::string fingerprint = gguf_fingerprint(metadata, tensors);
  if (const auto recorded = slice_metadata.get_string(kGgufSliceSourceFingerprint);
      recorded && *recorded != fingerprint)
    throw InputError(fmt::format(
        "{}: metadata key '{}' = {} ({}), but {} has {}: another model (other metadata or "
        "tensors); give the model it was sliced from",
        slice_file, kGgufSliceSourceFingerprint, *recorded,
        slice_metadata.get_string(kGgufSliceSource).value_or("?"), full.path().string(),
        fingerprint));
  const std::vector<std::vector<int32_t>> kept = experts_kept_of(sliced);
  const uint64_t blocks = metadata.arch_uint("block_count").value_or(0);
  if (kept.size() != blocks)
    throw InputError(fmt::format("{}: metadata key '{}' lists {} blocks, but {} has {}", slice_file,
                                 kGgufSliceExpertsKept, kept.size(), full.path().string(), blocks));

  GgufUnsliceReport report;
  std::vector<TensorSource> sources;
  for (const TensorView* tensor : tensors) {
    const TensorView& view = *tensor;
    const TensorView* from_slice = sliced.find(view.name);
    int64_t block = -1;
    const bool stacked = !gguf_expert_axis_kind(view.name, block).empty() && block >= 0 &&
                         static_cast<uint64_t>(block) < blocks &&
                         !kept[static_cast<size_t>(block)].empty();
    if (stacked) {
      const std::vector<int32_t>& ids = kept[static_cast<size_t>(block)];
      if (!from_slice)
        throw InputError(fmt::format("{}: tensor '{}' of {} is missing", slice_file, view.name,
                                     full.path().string()));
      if (from_slice->dtype != view.dtype || from_slice->shape.size() != view.shape.size() ||
          from_slice->shape.front() != static_cast<int64_t>(ids.size()) ||
          !std::equal(view.shape.begin() + 1, view.shape.end(), from_slice->shape.begin() + 1) ||
          ids.back() >= view.shape.front())
        throw InputError(fmt::format(
            "{}: tensor '{}' is {} {}, which does not hold the {} experts of '{}' {} {}",
            slice_file, view.name, dtype_name(from_slice->dtype), from_slice->shape_string(),
            ids.size(), view.name, dtype_name(view.dtype), view.shape_string()));
      sources.push_back(merged_rows(view, *from_slice, ids));
      ++report.tensors_merged;
    } else if (from_slice) {
      if (from_slice->dtype != view.dtype || from_slice->shape != view.shape)
        throw InputError(fmt::format("{}: tensor '{}' is {} {} but {} {} in {}", slice_file,
                                     view.name, dtype_name(from_slice->dtype),
                                     from_slice->shape_string(), dtype_name(view.dtype),
                                     view.shape_string(), full.path().string()));
      sources.push_back(TensorSource::copy_of(sliced, *from_slice));
      ++report.tensors_from_sliced;
    } else {
      sources.push_back(TensorSource::copy_of(full, view));
      ++report.tensors_from_full;
    }
    report.bytes += sources.back().byte_size();
  }
  GgufWriteOptions write;
  write.max_part_bytes = part_bytes(full, options);
  write.overwrite = options.overwrite;
  write.check_before_commit = [](const std::vector<fs::path>& staged) {
    for (const fs::path& part : staged) GgufFile::open(part);
  };
  report.files = write_gguf_model(out, metadata, sources, write);
  return report;
}

}  // namespace moeslice
