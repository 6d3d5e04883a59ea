//===- Passes.h - synthc's passes and pipelines ---------------------------===//
//
// Declarations of every pass (generated from Passes.td) and of the named
// pipelines of Pipelines.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_PASSES_PASSES_H
#define SYNTHC_PASSES_PASSES_H

#include "mlir/Pass/Pass.h"

#include <optional>
#include <string>

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

/// Which fusions the kernel pipeline runs: all by default. Each is a switch
/// of `synthc --no-fuse=NAME` and of `synth-cpu-kernels{no-fuse=NAME}`.
struct FusionOptions {
  /// "attention": score ops + attend -> fused_attention, and fixed random
  /// attention -> attention_probs + attend_probs (synth-fuse-attention).
  /// Off, every score op and attend is a kernel of its own; the backward
  /// pass (synth-autodiff) differentiates only the fused ops.
  bool attention = true;
  /// "elementwise": bias, activation, residual and head layout ops join
  /// their producers' kernels (synth-fuse-elementwise). Off, every op is a
  /// kernel of its own.
  bool elementwise = true;
  /// "projections": linears that read one input (Q, K and V) join one kernel
  /// (synth-fuse-projections). CPU only: the CUDA back end lowers one linear
  /// per kernel, and synthc turns it off there.
  bool projections = true;
  /// "prologue": a layer norm joins the kernel of the linears it feeds
  /// (synth-fuse-projections). CPU only, as `projections`.
  bool prologue = true;
};

/// The names of the fusion switches, in documentation order.
ArrayRef<StringRef> fusionSwitchNames();

/// Turns off the fusions named in the comma-separated `names`; returns what
/// is wrong (an unknown or empty name, with the valid ones), or nullopt.
std::optional<std::string> disableFusions(StringRef names,
                                          FusionOptions &fusion);

/// Canonicalize and fuse attention (unless `fusion` turns it off), then
/// differentiate (`gradients`) and append the optimizer (`train_step`) when
/// asked: synth IR before kernels.
void buildTrainingPipeline(OpPassManager &pm,
                           const TrainingPipelineOptions &training,
                           const FusionOptions &fusion = {});

/// The CPU compilation pipeline on synth IR: canonicalize, fuse attention,
/// differentiate and append the optimizer when asked, fuse elementwise
/// epilogues, form kernels, assign schedules for `scheduleTargets` (target
/// classes; empty: avx512, avx2 and sse41), plan memory. `fusion` skips
/// fusions.
void buildCpuKernelPipeline(OpPassManager &pm,
                            const TrainingPipelineOptions &training = {},
                            ArrayRef<std::string> scheduleTargets = {},
                            const FusionOptions &fusion = {});

/// Registers every pass and the named pipelines with the global registry
/// (for synth-opt).
void registerSynthPassesAndPipelines();

} // namespace mlir::synth

#endif // SYNTHC_PASSES_PASSES_H
