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

namespace mlir::synth {

void buildTrainingPipeline(OpPassManager &pm,
                           const TrainingPipelineOptions &training) {
  // 1. Simplify the model IR (folds such as split(merge(x)) -> x).
  pm.addPass(createCanonicalizerPass());
  // 2. Score ops + attend -> one fused attention per attention layer.
  pm.addNestedPass<func::FuncOp>(createFuseAttention());
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
                            ArrayRef<std::string> scheduleTargets) {
  // 1-3. Fused attention, and the training functions when asked.
  buildTrainingPipeline(pm, training);
  // 4. Bias, activation, residual and head layout join their producers.
  pm.addNestedPass<func::FuncOp>(createFuseElementwise());
  // 5. Everything else becomes a kernel of its own.
  pm.addNestedPass<func::FuncOp>(createFormKernels());
  // 6. Every kernel's schedule for each target class of the build: defaults
  //    for the fields not set yet, all of them checked.
  AssignSchedulesOptions schedules;
  if (scheduleTargets.empty()) {
    schedules.targets = {"avx512", "avx2", "sse41"};
  } else {
    schedules.targets.assign(scheduleTargets.begin(), scheduleTargets.end());
  }
  pm.addNestedPass<func::FuncOp>(createAssignSchedules(schedules));
  // 7. Temporaries share an arena by liveness.
  pm.addNestedPass<func::FuncOp>(createPlanMemory());
}

void registerSynthPassesAndPipelines() {
  registerSynthPasses();
  PassPipelineRegistration<>(
      "synth-cpu-kernels",
      "synth IR -> scheduled kernels with a memory plan (the CPU back end's "
      "input)",
      [](OpPassManager &pm) { buildCpuKernelPipeline(pm); });
}

} // namespace mlir::synth
