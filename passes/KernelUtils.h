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

/// Joins `units` (all in one block, in block order; each a synth.kernel or a
/// loose synth op without position operands) into one new synth.kernel
/// placed where the last of them was: the kernels' bodies and the loose ops
/// are cloned in order, values passed between units stay inside, values used
/// outside become results. The caller makes sure that nothing between the
/// units uses a result of an earlier one. The kernel has no schedule yet.
KernelOp fuseIntoKernel(ArrayRef<Operation *> units, StringRef name);

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
