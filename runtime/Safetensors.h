//===- Safetensors.h - read and write the safetensors format --------------===//
//
// The format (huggingface/safetensors): 8 bytes little-endian header length
// N, N bytes of JSON header {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {string: string}}, then the data region; offsets are
// relative to the data region. Reading validates everything a hostile or
// truncated file could get wrong before touching the data.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_SAFETENSORS_H
#define SYNTHC_RUNTIME_SAFETENSORS_H

#include "runtime/Tensor.h"

#include "absl/status/statusor.h"

#include <string>
#include <utility>
#include <vector>

namespace synth::safetensors {

struct File {
  /// Tensors in file order.
  std::vector<std::pair<std::string, Tensor>> tensors;
  /// The optional "__metadata__" string map, in file order.
  std::vector<std::pair<std::string, std::string>> metadata;

  const Tensor *find(const std::string &name) const;
  Tensor *find(const std::string &name);
  void add(std::string name, Tensor tensor) {
    tensors.emplace_back(std::move(name), std::move(tensor));
  }
};

/// Parses the bytes of a safetensors file; `source` names it in errors.
absl::StatusOr<File> parse(const std::string &bytes, const std::string &source);
/// Reads and parses the file at `path`.
absl::StatusOr<File> read(const std::string &path);

/// Serializes `file` (header padded with spaces to a multiple of 8 bytes).
std::string serialize(const File &file);
/// Writes `file` to `path` atomically: a temporary file in the same folder,
/// fsync, then rename, so a crash never leaves a half-written file at `path`.
absl::Status write(const std::string &path, const File &file);

} // namespace synth::safetensors

#endif // SYNTHC_RUNTIME_SAFETENSORS_H
