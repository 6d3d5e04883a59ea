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

/// The plugin file of a Halide autoscheduler (sched::autoschedulers()):
/// libautoschedule_<name>.so in $SYNTH_HALIDE_AUTOSCHEDULER_DIR, else in
/// Debian's /usr/lib/x86_64-linux-gnu/halide14. A kernel whose
/// KernelSpec::scheduler names one is scheduled by it (Halide::load_plugin,
/// Pipeline::auto_schedule) instead of by its explicit schedule.
std::string autoschedulerPlugin(const std::string &scheduler);

/// Compiles `kernel` for `targets` (without the Halide runtime) into object
/// files named after `prefix`; returns their paths. When the kernel's
/// autoscheduler gives up on it, the kernel is built with its explicit
/// schedule and `fallback` (if given) receives the autoscheduler's reason.
absl::StatusOr<std::vector<std::string>>
compileKernel(const KernelSpec &kernel, const std::vector<std::string> &targets,
              const std::string &prefix, std::string *fallback = nullptr);

/// Compiles the Halide runtime (thread pool, error handler, ...) once for all
/// kernels, for the least capable of `targets`.
absl::Status compileRuntime(const std::vector<std::string> &targets,
                            const std::string &objectPath);

/// The kernel's lowered Halide statement, as text (synthc --emit=halide).
absl::StatusOr<std::string> loweredStatement(const KernelSpec &kernel,
                                             const std::string &target);

} // namespace synth::cpu

#endif // SYNTHC_CODEGEN_CPU_HALIDEKERNELS_H
