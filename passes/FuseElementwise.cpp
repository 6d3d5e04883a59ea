//===- FuseElementwise.cpp - epilogues and layout into producer kernels
//----===//
//
// Groups are formed in one forward walk: an elementwise or layout op joins the
// group of a producer whose value only it uses; each group of two or more ops
// becomes a synth.kernel at the position of its last op (every operand from
// outside the group dominates that position, since it dominates the op that
// used it).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"
#include "passes/KernelUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

#include <map>

namespace mlir::synth {
#define GEN_PASS_DEF_FUSEELEMENTWISE
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

/// Ops that read each element of their input once and can run as the
/// epilogue of whatever produces it.
bool isEpilogue(Operation *op) {
  return isa<ReluOp, GeluOp, AddOp, AddPositionsOp, SplitHeadsOp, MergeHeadsOp>(
      op);
}

/// Ops that may start a group (anything computed by a kernel).
bool isProducer(Operation *op) {
  return op->getDialect() &&
         op->getDialect()->getNamespace() ==
             SynthDialect::getDialectNamespace() &&
         !isa<KernelOp, YieldOp, ToIndexOp>(op);
}

struct FuseElementwisePass
    : public mlir::synth::impl::FuseElementwiseBase<FuseElementwisePass> {
  void runOnOperation() override {
    for (Block &block : getOperation().getBody()) {
      fuseBlock(block);
    }
  }

  void fuseBlock(Block &block) {
    // group id per op; groups in creation order.
    std::map<Operation *, size_t> groupOf;
    std::vector<SmallVector<Operation *>> groups;
    for (Operation &op : block) {
      if (!isEpilogue(&op)) {
        continue;
      }
      // The latest producer in the block whose value only this op uses.
      Operation *chosen = nullptr;
      for (Value operand : op.getOperands()) {
        Operation *producer = operand.getDefiningOp();
        if (!producer || producer->getBlock() != &block ||
            !isProducer(producer) || !operand.hasOneUse() ||
            producer->getNumResults() != 1) {
          continue;
        }
        if (!chosen || chosen->isBeforeInBlock(producer)) {
          chosen = producer;
        }
      }
      if (!chosen) {
        continue;
      }
      auto it = groupOf.find(chosen);
      size_t group;
      if (it == groupOf.end()) {
        group = groups.size();
        groups.push_back({chosen});
        groupOf[chosen] = group;
      } else {
        group = it->second;
      }
      groups[group].push_back(&op);
      groupOf[&op] = group;
    }
    for (SmallVector<Operation *> &group : groups) {
      outlineIntoKernel(group, /*name=*/"fused");
    }
  }
};

} // namespace
