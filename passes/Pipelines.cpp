//===- Pipelines.cpp - synthc's pipelines, top to bottom ------------------===//
//
// The flow of DESIGN.md as named pass pipelines. Read this file to know what
// runs, in which order.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringExtras.h"

namespace mlir::synth {

//===----------------------------------------------------------------------===//
// Fusion switches
//===----------------------------------------------------------------------===//

ArrayRef<StringRef> fusionSwitchNames() {
  static const StringRef names[] = {"attention", "elementwise", "projections",
                                    "prologue"};
  return names;
}

std::optional<std::string> disableFusions(StringRef names,
                                          FusionOptions &fusion) {
  SmallVector<StringRef> parts;
  names.split(parts, ',');
  for (StringRef name : parts) {
    name = name.trim();
    if (name == "attention") {
      fusion.attention = false;
    } else if (name == "elementwise") {
      fusion.elementwise = false;
    } else if (name == "projections") {
      fusion.projections = false;
    } else if (name == "prologue") {
      fusion.prologue = false;
    } else {
      return (name.empty() ? std::string("an empty fusion name")
                           : "unknown fusion '" + name.str() + "'") +
             " (expected " + llvm::join(fusionSwitchNames(), ", ") + ")";
    }
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Pipelines
//===----------------------------------------------------------------------===//

void buildTrainingPipeline(OpPassManager &pm,
                           const TrainingPipelineOptions &training,
                           const FusionOptions &fusion) {
  // 1. Simplify the model IR (folds such as split(merge(x)) -> x).
  pm.addPass(createCanonicalizerPass());
  // 2. Score ops + attend -> one fused attention per attention layer (off:
  //    scores, softmax and the value product stay separate ops, and kernels).
  FuseAttentionOptions attention;
  attention.fuseScores = fusion.attention;
  attention.fixedRandom = fusion.attention;
  pm.addNestedPass<func::FuncOp>(createFuseAttention(attention));
  // 3. Training: loss -> gradients (reverse mode through the fused ops, whose
  //    gradients recompute attention tile by tile), then + AdamW ->
  //    train_step.
  if (training.gradients || training.trainStep) {
    pm.addPass(createAutodiff());
  }
  if (training.trainStep) {
    OptimizerOptions optimizer = training.optimizer;
    optimizer.keepGradients = training.gradients;
    pm.addPass(createOptimizer(optimizer));
  }
}

void buildCpuKernelPipeline(OpPassManager &pm,
                            const TrainingPipelineOptions &training,
                            ArrayRef<std::string> scheduleTargets,
                            const FusionOptions &fusion) {
  // 1-3. Fused attention, and the training functions when asked.
  buildTrainingPipeline(pm, training, fusion);
  // 4. Bias, activation, residual and head layout join their producers.
  if (fusion.elementwise) {
    pm.addNestedPass<func::FuncOp>(createFuseElementwise());
  }
  // 5. Linears of one input (Q, K, V) as one kernel; a layer norm as the
  //    prologue of the linears it feeds.
  if (fusion.projections || fusion.prologue) {
    FuseProjectionsOptions projections;
    projections.projections = fusion.projections;
    projections.prologue = fusion.prologue;
    pm.addNestedPass<func::FuncOp>(createFuseProjections(projections));
  }
  // 6. Everything else becomes a kernel of its own.
  pm.addNestedPass<func::FuncOp>(createFormKernels());
  // 7. Every kernel's schedule for each target class of the build: defaults
  //    for the fields not set yet, all of them checked.
  AssignSchedulesOptions schedules;
  if (scheduleTargets.empty()) {
    schedules.targets = {"avx512", "avx2", "sse41"};
  } else {
    schedules.targets.assign(scheduleTargets.begin(), scheduleTargets.end());
  }
  pm.addNestedPass<func::FuncOp>(createAssignSchedules(schedules));
  // 8. Temporaries share an arena by liveness.
  pm.addNestedPass<func::FuncOp>(createPlanMemory());
}

namespace {

/// The options of synth-cpu-kernels: `no-fuse=attention,elementwise`.
struct CpuKernelPipelineOptions
    : public PassPipelineOptions<CpuKernelPipelineOptions> {
  ListOption<std::string> noFuse{
      *this, "no-fuse",
      llvm::cl::desc(
          "fusions to skip: attention, elementwise, projections, prologue")};
};

} // namespace

void registerSynthPassesAndPipelines() {
  registerSynthPasses();
  // Registered by hand (not PassPipelineRegistration) so that an unknown
  // fusion name is an error naming the valid ones, as in synthc.
  registerPassPipeline(
      "synth-cpu-kernels",
      "synth IR -> scheduled kernels with a memory plan (the CPU back end's "
      "input)",
      [](OpPassManager &pm, StringRef text,
         function_ref<LogicalResult(const Twine &)> errorHandler) {
        CpuKernelPipelineOptions options;
        if (failed(options.parseFromString(text))) {
          return failure();
        }
        FusionOptions fusion;
        for (const std::string &names : options.noFuse) {
          if (std::optional<std::string> error =
                  disableFusions(names, fusion)) {
            return errorHandler("synth-cpu-kernels: no-fuse: " + *error);
          }
        }
        buildCpuKernelPipeline(pm, {}, {}, fusion);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> handler) {
        handler(CpuKernelPipelineOptions());
      });
}

} // namespace mlir::synth
