//===- KernelSpecFromIR.h - synth.kernel -> KernelSpec --------------------===//

#ifndef SYNTHC_CODEGEN_CPU_KERNELSPECFROMIR_H
#define SYNTHC_CODEGEN_CPU_KERNELSPECFROMIR_H

#include "codegen/cpu/KernelSpec.h"

#include "absl/status/statusor.h"

namespace mlir {
class Type;
namespace synth {
class KernelOp;
} // namespace synth
} // namespace mlir

namespace synth::cpu {

/// Describes a scheduled kernel; fails (naming the op and its location) on an
/// op or feature the CPU back end does not implement.
absl::StatusOr<KernelSpec> describeKernel(mlir::synth::KernelOp kernel);

/// The element type of a tensor type as stored in buffers (i1 -> U8).
absl::StatusOr<TensorSpec> describeTensor(mlir::Type type);

} // namespace synth::cpu

#endif // SYNTHC_CODEGEN_CPU_KERNELSPECFROMIR_H
