//===- KernelUtils.h - outlining ops into synth.kernel regions ------------===//

#ifndef SYNTHC_PASSES_KERNELUTILS_H
#define SYNTHC_PASSES_KERNELUTILS_H

#include "dialect/SynthOps.h"
#include "passes/CpuSchedule.h"

namespace mlir::synth {

/// Moves `ops` (all in one block, in block order) into a new synth.kernel
/// placed where the last of them was. Values from outside become kernel
/// inputs, values used outside become kernel results. The kernel has no
/// schedule yet.
KernelOp outlineIntoKernel(ArrayRef<Operation *> ops, StringRef name);

/// What the kernel's schedule depends on: its ops and attention shapes.
::synth::sched::KernelTraits kernelTraits(KernelOp kernel);

/// A target's schedule fields <-> a dictionary attribute (i64 and strings).
::synth::sched::Schedule scheduleFromAttr(DictionaryAttr fields);
DictionaryAttr scheduleToAttr(MLIRContext *ctx,
                              const ::synth::sched::Schedule &schedule);

/// The kernel's CPU scheduler: "" (its explicit #synth.schedule) or a Halide
/// autoscheduler (sched::autoschedulers()), held in the kernel's
/// `cpu_scheduler` string attribute.
std::string cpuScheduler(KernelOp kernel);
void setCpuScheduler(KernelOp kernel, StringRef scheduler);

/// Bytes of a tensor value in a buffer (i1 stored as one byte).
int64_t tensorBytes(Type type);

} // namespace mlir::synth

#endif // SYNTHC_PASSES_KERNELUTILS_H
