// Gathering usage rows from the ranks of a job: documents packed in the order each rank owns
// them, unpacked to their corpus positions.
#include "profile/usage_exchange.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "common/byte_packing.h"

namespace moeslice {
namespace {

// The [L, E] (or [E] for one layer) slices of a document's rows.
template <typename T>
std::vector<T> rows(const std::vector<T>& values, size_t begin, size_t count) {
  return std::vector<T>(values.begin() + static_cast<std::ptrdiff_t>(begin),
                        values.begin() + static_cast<std::ptrdiff_t>(begin + count));
}

template <typename T>
void place(std::vector<T>& values, size_t begin, const std::vector<T>& slice) {
  std::copy(slice.begin(), slice.end(), values.begin() + static_cast<std::ptrdiff_t>(begin));
}

}  // namespace

UsageProfile gather_usage_profile(const Cluster& cluster, const UsageProfile& mine,
                                  int64_t documents) {
  const size_t per_document = static_cast<size_t>(mine.layers * mine.experts);
  BytePacker packer;
  packer.put<int64_t>(mine.document_count());
  for (int64_t d = 0; d < mine.document_count(); ++d) {
    const size_t i = static_cast<size_t>(d);
    packer.put_string(mine.documents[i].id);
    packer.put_string(mine.documents[i].domain);
    packer.put<int64_t>(mine.tokens[i]);
    packer.put_vector(rows(mine.counts, i * per_document, per_document));
    packer.put_vector(rows(mine.mass, i * per_document, per_document));
    packer.put_vector(rows(mine.gate_norm, i * per_document, per_document));
    packer.put_vector(rows(mine.gate_weight, i * per_document, per_document));
  }
  const std::vector<std::string> messages = cluster.all_gather(packer.take());

  UsageProfile all;
  all.layers = mine.layers;
  all.experts = mine.experts;
  all.info = mine.info;
  std::vector<ByteUnpacker> readers(messages.begin(), messages.end());
  std::vector<int64_t> remaining;
  for (ByteUnpacker& reader : readers) remaining.push_back(reader.get<int64_t>());
  for (int64_t d = 0; d < documents; ++d) {
    const size_t owner = static_cast<size_t>(cluster.owner(d));
    ByteUnpacker& reader = readers.at(owner);
    if (remaining[owner]-- <= 0) throw std::logic_error("a rank profiled too few documents");
    UsageDocument document;
    document.id = reader.get_string();
    document.domain = reader.get_string();
    const int64_t index = all.add_document(std::move(document));
    const size_t i = static_cast<size_t>(index);
    all.tokens[i] = reader.get<int64_t>();
    place(all.counts, i * per_document, reader.get_vector<int32_t>());
    place(all.mass, i * per_document, reader.get_vector<float>());
    place(all.gate_norm, i * per_document, reader.get_vector<float>());
    place(all.gate_weight, i * per_document, reader.get_vector<float>());
  }
  for (const ByteUnpacker& reader : readers)
    if (!reader.done()) throw std::logic_error("a rank profiled too many documents");
  return all;
}

void share_layer_rows(const Cluster& cluster, UsageProfile& usage, int64_t layer) {
  if (cluster.size() == 1) return;
  const size_t experts = static_cast<size_t>(usage.experts);
  BytePacker packer;
  for (int64_t d = 0; d < usage.document_count(); ++d) {
    if (!cluster.owns(d)) continue;
    const size_t begin = usage.index(d, layer, 0);
    packer.put_vector(rows(usage.counts, begin, experts));
    packer.put_vector(rows(usage.mass, begin, experts));
    packer.put_vector(rows(usage.gate_norm, begin, experts));
    packer.put_vector(rows(usage.gate_weight, begin, experts));
  }
  const std::vector<std::string> messages = cluster.all_gather(packer.take());
  std::vector<ByteUnpacker> readers(messages.begin(), messages.end());
  for (int64_t d = 0; d < usage.document_count(); ++d) {
    ByteUnpacker& reader = readers.at(static_cast<size_t>(cluster.owner(d)));
    const size_t begin = usage.index(d, layer, 0);
    std::vector<int32_t> counts = reader.get_vector<int32_t>();
    std::vector<float> mass = reader.get_vector<float>(), gate = reader.get_vector<float>();
    std::vector<float> weight = reader.get_vector<float>();
    if (cluster.owns(d)) continue;  // its own rows are already in place
    place(usage.counts, begin, counts);
    place(usage.mass, begin, mass);
    place(usage.gate_norm, begin, gate);
    place(usage.gate_weight, begin, weight);
  }
}

}  // namespace moeslice
