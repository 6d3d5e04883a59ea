//===- ScheduleFile.h - kernel schedules as an editable JSON file ---------===//
//
// `synthc --emit=schedule` writes every kernel's schedule (name, kind, shapes
// and the fields per target class); `synthc --schedule=FILE` applies such a
// file, whose entries select kernels by name (with `*` wildcards), kind and
// shapes. The format is docs/schedules.md.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_CODEGEN_CPU_SCHEDULEFILE_H
#define SYNTHC_CODEGEN_CPU_SCHEDULEFILE_H

#include "passes/CpuSchedule.h"
#include "runtime/Json.h"

#include "absl/status/status.h"

#include <string>

namespace mlir {
class ModuleOp;
} // namespace mlir

namespace synth::cpu {

constexpr const char *kScheduleFormat = "synthc-schedule";
constexpr int64_t kScheduleVersion = 1;

/// One target class's fields as the file writes them (integers and strings).
json::Value fieldsToJson(const sched::Schedule &schedule);

/// Every kernel's schedule (after synth-assign-schedules), one entry per
/// kernel in function and kernel order.
json::Value exportSchedules(mlir::ModuleOp module);

/// Applies the entries of a parsed schedule file (read from `source`, for
/// messages) to the module's kernels, later entries over earlier ones, and
/// checks the result. Errors read "<source>:<line>:<column>: <what>", naming
/// the kernel and field: unknown keys, kernels or fields, bad values, an
/// entry that matches no kernel.
/// Has every kernel of the module scheduled by `scheduler`: "explicit" (its
/// #synth.schedule) or a Halide autoscheduler of sched::autoschedulers().
absl::Status useScheduler(mlir::ModuleOp module, const std::string &scheduler);

absl::Status applySchedules(mlir::ModuleOp module, const json::Value &file,
                            const std::string &source);

} // namespace synth::cpu

#endif // SYNTHC_CODEGEN_CPU_SCHEDULEFILE_H
