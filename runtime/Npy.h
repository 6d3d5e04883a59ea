//===- Npy.h - NumPy .npy files -------------------------------------------===//
//
// The .npy format (numpy.lib.format): the magic "\x93NUMPY", a version byte
// pair, a little-endian header length (2 bytes in version 1.0, 4 in 2.0 and
// 3.0), a Python dict literal {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), } padded with spaces and a newline so the data starts
// 64-byte aligned, then the C-order data. synth-run reads token ids and
// writes logits with it, so NumPy and PyTorch users can exchange tensors.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_RUNTIME_NPY_H
#define SYNTHC_RUNTIME_NPY_H

#include "runtime/Tensor.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include <string>

namespace synth::npy {

/// Parses .npy bytes: little-endian (or byte-sized) F64, F32, I64, I32, U8
/// and bool, C order. `source` names the file in errors.
absl::StatusOr<Tensor> parse(const std::string &bytes,
                             const std::string &source);
absl::StatusOr<Tensor> read(const std::string &path);

/// Version 1.0 bytes of `tensor` (F64, F32, I64, I32, U8 or Bool).
absl::StatusOr<std::string> serialize(const Tensor &tensor);
/// Writes `tensor` to `path` atomically.
absl::Status write(const std::string &path, const Tensor &tensor);

} // namespace synth::npy

#endif // SYNTHC_RUNTIME_NPY_H
