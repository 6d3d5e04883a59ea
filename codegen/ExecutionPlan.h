//===- ExecutionPlan.h - a function of kernels -> an artifact entry -------===//
//
// What every back end writes into its artifact's manifest for one entry
// function (docs/artifact-format.md): a buffer per function argument (input
// or parameter) and per kernel result (arena temporary at its planned offset,
// derived value, or output), and a call per kernel in program order. Back ends
// differ in how they compile kernels, not in this, nor in how they write the
// initial weights and record the artifact's files.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_EXECUTIONPLAN_H
#define SYNTHC_CODEGEN_EXECUTIONPLAN_H

#include "frontend/Parameters.h"
#include "runtime/Manifest.h"

#include "absl/status/statusor.h"

namespace mlir {
class Type;
namespace func {
class FuncOp;
} // namespace func
namespace synth {
class KernelOp;
} // namespace synth
} // namespace mlir

namespace synth::codegen {

/// The plan of `func` (after synth-plan-memory). Kernels that read only
/// parameters (or values derived from them) become `once` calls writing
/// `derived` buffers; results are named by `synth.output` attributes.
absl::StatusOr<rt::EntryInfo> planEntry(mlir::func::FuncOp func);

/// Shape and dtype of a tensor as buffers store it (i1 -> U8).
absl::StatusOr<rt::BufferInfo> describeBuffer(mlir::Type type);

/// Arithmetic of a kernel: 2 FLOPs per multiply-add of matmul-shaped work
/// (linear, score functions and P V of attention), 1 per result element
/// otherwise. For `synth-run bench`.
int64_t kernelFlops(mlir::synth::KernelOp kernel);

/// Writes the parameters of `table`, initialized from `seed`, as
/// `<dir>/weights.safetensors`.
absl::Status writeInitialWeights(const std::string &dir,
                                 const std::vector<ParamInfo> &table,
                                 uint64_t seed);

/// Appends the size and SHA-256 of each `<dir>/<name>` to `manifest.files`.
absl::Status recordFiles(rt::Manifest &manifest, const std::string &dir,
                         const std::vector<std::string> &names);

} // namespace synth::codegen

#endif // SYNTHC_CODEGEN_EXECUTIONPLAN_H
