//===- Tensor.h - a dense host tensor with a dtype and a shape ------------===//
//
// The runtime's plain data container: raw little-endian bytes plus dtype and
// shape. Used for weights, checkpoints, inputs and outputs.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_TENSOR_H
#define SYNTHC_RUNTIME_TENSOR_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace synth {

enum class DType { F64, F32, F16, BF16, I64, I32, U8, Bool };

/// Bytes per element.
size_t dtypeSize(DType dtype);
/// The safetensors spelling: "F32", "BF16", "I64", "BOOL", ...
const char *dtypeName(DType dtype);
/// Inverse of dtypeName; nullopt for an unknown name.
std::optional<DType> parseDType(const std::string &name);

/// Formats a shape as "[4, 64, 256]".
std::string formatShape(const std::vector<int64_t> &shape);

struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  /// A zero-filled tensor.
  static Tensor zeros(DType dtype, std::vector<int64_t> shape);

  /// Number of elements (1 for a scalar).
  int64_t numel() const;

  template <typename T> T *data() {
    return reinterpret_cast<T *>(bytes.data());
  }
  template <typename T> const T *data() const {
    return reinterpret_cast<const T *>(bytes.data());
  }
};

} // namespace synth

#endif // SYNTHC_RUNTIME_TENSOR_H
