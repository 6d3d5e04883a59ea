//===- CpuArtifact.h - kernels of a module -> a CPU artifact --------------===//
//
// The CPU back end's driver: takes a module whose functions went through the
// synth-cpu-kernels pipeline (kernels + memory plan), compiles every kernel
// with Halide, links them into kernels.so, and writes the artifact directory
// of docs/artifact-format.md.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_CPU_CPUARTIFACT_H
#define SYNTHC_CODEGEN_CPU_CPUARTIFACT_H

#include "frontend/Parameters.h"
#include "runtime/Json.h"

#include "absl/status/status.h"

#include <string>
#include <vector>

namespace mlir {
class ModuleOp;
} // namespace mlir

namespace synth::cpu {

struct CpuArtifactOptions {
  /// Output directory (created; existing files in it are replaced).
  std::string output;
  /// Build for this machine only instead of the portable multi-target set.
  bool hostOnly = false;
  /// The model description, verbatim, for the manifest.
  json::Value model;
  /// Keep the intermediate object files (for debugging) in output/obj.
  bool keepObjects = false;
  /// When set, receives what the user should know about the build (kernels
  /// an autoscheduler gave up on).
  std::vector<std::string> *notes = nullptr;
};

/// Writes the artifact: the module's kernels, a plan per function, and the
/// parameters of `table` initialized from `seed`. Errors name the kernel,
/// file or tool that failed.
absl::Status writeCpuArtifact(mlir::ModuleOp module,
                              const std::vector<ParamInfo> &table,
                              uint64_t seed, const CpuArtifactOptions &options);

/// The schedule target classes (passes/CpuSchedule.h) of a portable build
/// (one per kernel variant) or of a build for this machine only.
std::vector<std::string> scheduleClasses(bool hostOnly);

/// Lowered Halide statements of every kernel of the module, one after the
/// other, each preceded by "// kernel <name>".
absl::StatusOr<std::string> emitHalideStatements(mlir::ModuleOp module,
                                                 bool hostOnly);

} // namespace synth::cpu

#endif // SYNTHC_CODEGEN_CPU_CPUARTIFACT_H
