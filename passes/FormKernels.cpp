//===- FormKernels.cpp - every op in a kernel, every kernel named ---------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"
#include "passes/KernelUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::synth {
#define GEN_PASS_DEF_FORMKERNELS
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

/// "linear", "fused_attention", ...: the op name without the dialect prefix.
std::string anchorName(Operation *op) {
  return op->getName().stripDialect().str();
}

struct FormKernelsPass
    : public mlir::synth::impl::FormKernelsBase<FormKernelsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    for (Block &block : func.getBody()) {
      SmallVector<Operation *> loose;
      for (Operation &op : block) {
        if (!isa<KernelOp, ToIndexOp>(op) &&
            !op.hasTrait<OpTrait::IsTerminator>() && op.getDialect() &&
            op.getDialect()->getNamespace() ==
                SynthDialect::getDialectNamespace()) {
          loose.push_back(&op);
        }
      }
      for (Operation *op : loose) {
        outlineIntoKernel({op}, "kernel");
      }
      // Positions were copied into the kernels that use them.
      for (Operation &op : llvm::make_early_inc_range(block)) {
        if (isa<ToIndexOp>(op) && op.use_empty()) {
          op.erase();
        }
      }
    }
    unsigned index = 0;
    func.walk([&](KernelOp kernel) {
      // The anchor is the kernel's first op, not counting copied positions
      // and a layer norm prologue (synth-fuse-projections): the linear it
      // feeds.
      Operation *anchor = &kernel.getBody().front().front();
      for (Operation &op : kernel.getBody().front()) {
        if (isa<ToIndexOp>(op)) {
          continue;
        }
        anchor = &op;
        if (isa<LayerNormOp>(op) &&
            llvm::any_of(op.getUsers(),
                         [](Operation *user) { return isa<LinearOp>(user); })) {
          continue;
        }
        break;
      }
      kernel.setKernelName(
          (func.getSymName() + "_k" + Twine(index++) + "_" + anchorName(anchor))
              .str());
    });
  }
};

} // namespace
