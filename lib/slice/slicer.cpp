// Carrying out a slice plan: tensor sources from the fates, the write through the input's format,
// metadata, side files, and the check overlapping the write.
#include "slice/slicer.h"

#include <future>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/format_registry.h"
#include "slice/expert_rows.h"

namespace moeslice {
namespace fs = std::filesystem;

std::vector<TensorSource> slice_tensor_sources(const TensorStore& store, const SlicePlan& plan) {
  std::vector<TensorSource> tensors;
  tensors.reserve(plan.output_order.size());
  for (const size_t i : plan.output_order) {
    const PlannedTensor& tensor = plan.tensors[i];
    if (tensor.fate == TensorFate::kCutAlongExperts)
      tensors.push_back(kept_rows(store, *tensor.source, tensor.kept_rows));
    else
      tensors.push_back(TensorSource::copy_of(store, *tensor.source, tensor.output_name));
  }
  return tensors;
}

void copy_side_files(const TensorStore& from, const fs::path& to) {
  for (const fs::path& file : from.side_files()) {
    const fs::path name = file.filename();
    if (name == kPruningMetadataFileName) continue;
    std::error_code error;
    fs::copy_file(file, to / name, error);
    if (error)
      throw IoError(fmt::format("cannot copy {} to {}: {}", file.string(), (to / name).string(),
                                error.message()));
  }
}

SliceReport write_slice(const Model& model, const SlicePlan& plan, const fs::path& out_dir,
                        const SliceOptions& options) {
  const TensorStore& checkpoint = *model.checkpoint;
  check_output_outside_inputs(out_dir, checkpoint.input_paths());
  const std::vector<TensorSource> tensors = slice_tensor_sources(checkpoint, plan);
  SliceReport report;
  static_cast<SliceSummary&>(report) = plan.summary;

  AtomicOutputDir output(out_dir, options.overwrite);
  // The full model's half of the check overlaps the copy, which mostly waits on the disk.
  std::future<RestrictedOutputs> expected;
  if (options.verify && model.spec.family->forward_supported)
    expected =
        std::async(std::launch::async, [&] { return restricted_layer_outputs(model, plan.keep); });
  // Written in the input's format, which the check then reads back through the registry.
  output.fill([&](const fs::path& staging) {
    checkpoint_format(checkpoint.format_name())
        .writer->write(staging, plan.config, tensors, plan.format_metadata,
                       {.max_shard_bytes = options.max_shard_bytes,
                        // Copying past the page cache is fastest, but the check reads the kept
                        // experts back: then they had better stay cached.
                        .copy = expected.valid() ? RangeCopy::kCached : RangeCopy::kDirect});
    nlohmann::json metadata = plan.metadata;
    // Cut from the original (not from a slice of it): record what identifies it for unslice.
    if (metadata.value("original_model", "") == metadata.value("sliced_from", ""))
      add_original_model_identity(metadata, model);
    write_file_atomically(staging / kPruningMetadataFileName, metadata.dump(2) + "\n", false);
    copy_side_files(checkpoint, staging);
  });
  // The written checkpoint must open as its family expects before it is published.
  const Model sliced = open_model(output.staging());
  if (expected.valid())
    report.verify_max_relative_error = check_sliced_layers(sliced, expected.get());
  checkpoint.check_unchanged();  // the copy read one version of every shard
  output.commit();
  return report;
}

SliceReport slice_checkpoint(const Model& model, const KeepPlan& plan,
                             const nlohmann::json& plan_document, const fs::path& out_dir,
                             const SliceOptions& options) {
  // A bad output is refused before the plan is looked at, as it always was.
  check_output_outside_inputs(out_dir, model.checkpoint->input_paths());
  const SliceProvenance provenance{plan_document, read_input_pruning_metadata(*model.checkpoint)};
  return write_slice(model, plan_slice(model.spec, *model.checkpoint, plan, provenance), out_dir,
                     options);
}

}  // namespace moeslice
