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

/// The CPU compilation pipeline on synth IR: canonicalize, fuse attention,
/// fuse elementwise epilogues, form kernels, plan memory.
void buildCpuKernelPipeline(OpPassManager &pm);

/// Registers every pass and the named pipelines with the global registry
/// (for synth-opt).
void registerSynthPassesAndPipelines();

} // namespace mlir::synth

#endif // SYNTHC_PASSES_PASSES_H
