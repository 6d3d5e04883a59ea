//===- AssignSchedules.cpp - every kernel gets its schedule, per target ---===//
//
// For each target class of the build, every field of a kernel's schedule
// (passes/CpuSchedule.h: which fields, by the kernel's ops) that the kernel
// does not set yet gets the target's default; every field, set or default,
// is then checked. Fields that a user or synth-tune set are kept, so this
// pass also validates hand-edited schedules.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"
#include "passes/CpuSchedule.h"
#include "passes/KernelUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::synth {
#define GEN_PASS_DEF_ASSIGNSCHEDULES
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

struct AssignSchedulesPass
    : public mlir::synth::impl::AssignSchedulesBase<AssignSchedulesPass> {
  using AssignSchedulesBase::AssignSchedulesBase;

  void runOnOperation() override {
    std::vector<const ::synth::sched::Isa *> isas;
    for (const std::string &name : targets) {
      const ::synth::sched::Isa *isa = ::synth::sched::findIsa(name);
      if (!isa) {
        getOperation().emitError()
            << "synth-assign-schedules: unknown target '" << name
            << "' (expected avx512, avx2 or sse41)";
        return signalPassFailure();
      }
      isas.push_back(isa);
    }
    MLIRContext *ctx = &getContext();
    WalkResult result = getOperation().walk([&](KernelOp kernel) {
      ::synth::sched::KernelTraits traits = kernelTraits(kernel);
      ScheduleAttr old = kernel.getScheduleAttr();
      NamedAttrList perTarget;
      if (old) {
        perTarget.append(old.getTargets().getValue());
      }
      for (const ::synth::sched::Isa *isa : isas) {
        ::synth::sched::Schedule schedule =
            ::synth::sched::defaultSchedule(traits, *isa);
        if (old) {
          if (DictionaryAttr given = old.getTarget(isa->name)) {
            for (auto &[name, value] : scheduleFromAttr(given).fields) {
              schedule.fields[name] = value;
            }
          }
        }
        if (auto error = ::synth::sched::validate(schedule, traits, *isa)) {
          kernel.emitError()
              << "kernel '" << kernel.getKernelName() << "', schedule for "
              << isa->name << ": " << *error;
          return WalkResult::interrupt();
        }
        perTarget.set(isa->name, scheduleToAttr(ctx, schedule));
      }
      kernel.setScheduleAttr(
          ScheduleAttr::get(ctx, perTarget.getDictionary(ctx)));
      return WalkResult::advance();
    });
    if (result.wasInterrupted()) {
      signalPassFailure();
    }
  }
};

} // namespace
