//===- HalideKernels.h - KernelSpec -> Halide pipeline -> object code -----===//
//
// Every kernel becomes one Halide pipeline: the algorithm (one Func per op,
// written from the math of docs/model-format.md) first, then the schedule,
// kept apart and driven by the kernel's ScheduleSpec.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_CPU_HALIDEKERNELS_H
#define SYNTHC_CODEGEN_CPU_HALIDEKERNELS_H

#include "codegen/cpu/KernelSpec.h"

#include "absl/status/statusor.h"

#include <string>
#include <vector>

namespace synth::cpu {

/// The Halide targets of a portable build (runtime dispatch picks the first
/// the CPU supports) and of a build for this machine only.
std::vector<std::string> portableTargets();
std::string hostTarget();

/// Compiles `kernel` for `targets` (without the Halide runtime) into object
/// files named after `prefix`; returns their paths.
absl::StatusOr<std::vector<std::string>>
compileKernel(const KernelSpec &kernel, const std::vector<std::string> &targets,
              const std::string &prefix);

/// Compiles the Halide runtime (thread pool, error handler, ...) once for all
/// kernels, for the least capable of `targets`.
absl::Status compileRuntime(const std::vector<std::string> &targets,
                            const std::string &objectPath);

/// The kernel's lowered Halide statement, as text (synthc --emit=halide).
absl::StatusOr<std::string> loweredStatement(const KernelSpec &kernel,
                                             const std::string &target);

} // namespace synth::cpu

#endif // SYNTHC_CODEGEN_CPU_HALIDEKERNELS_H
