// Merging a sliced model's experts back into the full checkpoint: the slice's plan, recovered from
// its pruning_metadata.json, read backwards.
#include "slice/unslicer.h"

#include <algorithm>

#include <fmt/core.h>

#include "common/atomic_output.h"
#include "common/error.h"
#include "format/format_registry.h"
#include "slice/expert_rows.h"
#include "slice/pruning_metadata.h"
#include "slice/slice_plan.h"
#include "slice/slicer.h"

namespace moeslice {
namespace fs = std::filesystem;

namespace {

ModelError layout_mismatch(const TensorView& full, const TensorView& sliced) {
  return ModelError(
      fmt::format("tensor '{}': {} {} in the sliced model does not match {} {} in the full model",
                  full.name, dtype_name(sliced.dtype), format_shape(sliced.shape),
                  dtype_name(full.dtype), format_shape(full.shape)));
}

// The same dtype and the same shape past the expert axis.
void require_same_rows(const TensorView& full, const TensorView& sliced) {
  if (full.dtype != sliced.dtype || full.shape.size() != sliced.shape.size() ||
      !std::equal(full.shape.begin() + 1, full.shape.end(), sliced.shape.begin() + 1))
    throw layout_mismatch(full, sliced);
}

}  // namespace

UnsliceReport unslice_checkpoint(const Model& full, const Model& sliced, const fs::path& out_dir,
                                 uint64_t max_shard_bytes, bool overwrite) {
  std::vector<fs::path> inputs = full.checkpoint->input_paths();
  for (const fs::path& path : sliced.checkpoint->input_paths()) inputs.push_back(path);
  check_output_outside_inputs(out_dir, inputs);
  if (full.spec.family != sliced.spec.family)
    throw InputError(fmt::format("{} is a {} model but {} is {}",
                                 sliced.checkpoint->path().string(), sliced.spec.family->family,
                                 full.checkpoint->path().string(), full.spec.family->family));
  const KeepPlan kept = read_slice_keep_plan(full, sliced);

  // Each full-model tensor, in name order, from where its fate in the slice put it.
  UnsliceReport report;
  std::vector<TensorSource> tensors;
  for (const PlannedTensor& planned : plan_tensor_fates(full.spec, *full.checkpoint, kept)) {
    const TensorView& view = *planned.source;
    switch (planned.fate) {
      case TensorFate::kCutAlongExperts: {  // kept rows from the slice, the others from here
        const TensorView& rows = sliced.checkpoint->tensor(view.name);
        require_same_rows(view, rows);
        tensors.push_back(merged_rows(view, rows, planned.kept_rows));
        ++report.tensors_merged;
        continue;
      }
      case TensorFate::kKeptExpert: {  // a kept expert's tensor (companions included), renumbered
        const TensorView& source = sliced.checkpoint->tensor(planned.output_name);
        if (source.dtype != view.dtype || source.shape != view.shape)
          require_same_rows(view, source);
        tensors.push_back(TensorSource::copy_of(source, view.name));
        ++report.tensors_from_sliced;
        continue;
      }
      case TensorFate::kCopied:  // attention, norms, embeddings, dense layers: the slice's
        if (const TensorView* source = sliced.checkpoint->find(view.name)) {
          if (source->dtype != view.dtype || source->shape != view.shape)
            throw layout_mismatch(view, *source);
          tensors.push_back(TensorSource::copy_of(*source));
          ++report.tensors_from_sliced;
          continue;
        }
        break;
      case TensorFate::kDropped:
      case TensorFate::kDroppedMtp:  // the slice has no MTP layer: the full model's
        break;
    }
    tensors.push_back(TensorSource::copy_of(view));
    ++report.tensors_from_full;
  }
  for (const auto& tensor : tensors) report.bytes += tensor.byte_size();

  AtomicOutputDir output(out_dir, overwrite);
  output.fill([&](const fs::path& staging) {
    checkpoint_format(full.checkpoint->format_name())
        .writer->write(staging, full.checkpoint->config(), tensors, {{"moeslice", "unslice"}},
                       {.max_shard_bytes = max_shard_bytes});
    copy_side_files(*full.checkpoint, staging);
  });
  open_model(output.staging());
  full.checkpoint->check_unchanged();
  sliced.checkpoint->check_unchanged();
  output.commit();
  return report;
}

}  // namespace moeslice
