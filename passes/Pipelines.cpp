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

void buildCpuKernelPipeline(OpPassManager &pm) {
  // 1. Simplify the model IR (folds such as split(merge(x)) -> x).
  pm.addPass(createCanonicalizerPass());
  // 2. Score ops + attend -> one fused attention per attention layer.
  pm.addNestedPass<func::FuncOp>(createFuseAttention());
  // 3. Bias, activation, residual and head layout join their producers.
  pm.addNestedPass<func::FuncOp>(createFuseElementwise());
  // 4. Everything else becomes a kernel of its own; defaults schedules.
  pm.addNestedPass<func::FuncOp>(createFormKernels());
  // 5. Temporaries share an arena by liveness.
  pm.addNestedPass<func::FuncOp>(createPlanMemory());
}

void registerSynthPassesAndPipelines() {
  registerSynthPasses();
  PassPipelineRegistration<>(
      "synth-cpu-kernels",
      "synth IR -> scheduled kernels with a memory plan (the CPU back end's "
      "input)",
      buildCpuKernelPipeline);
}

} // namespace mlir::synth
