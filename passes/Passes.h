//===- Passes.h - synthc's passes and pipelines ---------------------------===//
//
// Declarations of every pass (generated from Passes.td) and of the named
// pipelines of Pipelines.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_PASSES_PASSES_H
#define SYNTHC_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
class OpPassManager;
namespace func {
class FuncOp;
} // namespace func
} // namespace mlir

namespace mlir::synth {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

/// What the kernel pipeline adds for training.
struct TrainingPipelineOptions {
  /// Build @gradients (loss and every parameter's gradient) and keep it.
  bool gradients = false;
  /// Build @train_step (gradients + AdamW, parameters updated in place).
  bool trainStep = false;
  OptimizerOptions optimizer;
};

/// Canonicalize and fuse attention, then differentiate (`gradients`) and
/// append the optimizer (`train_step`) when asked: synth IR before kernels.
void buildTrainingPipeline(OpPassManager &pm,
                           const TrainingPipelineOptions &training);

/// The CPU compilation pipeline on synth IR: canonicalize, fuse attention,
/// differentiate and append the optimizer when asked, fuse elementwise
/// epilogues, form kernels, assign schedules for `scheduleTargets` (target
/// classes; empty: avx512, avx2 and sse41), plan memory.
void buildCpuKernelPipeline(OpPassManager &pm,
                            const TrainingPipelineOptions &training = {},
                            ArrayRef<std::string> scheduleTargets = {});

/// Registers every pass and the named pipelines with the global registry
/// (for synth-opt).
void registerSynthPassesAndPipelines();

} // namespace mlir::synth

#endif // SYNTHC_PASSES_PASSES_H
