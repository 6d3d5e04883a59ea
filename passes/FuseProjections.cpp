//===- FuseProjections.cpp - linears of one input, and their layer norm ---===//
//
// Two fusions on the kernels that synth-fuse-elementwise formed and on loose
// linears (which merge only when nothing between them uses the earlier ones'
// results, so not a chain of linear, split, linear, split):
//
// - projections: linears that read the same value with weights of the same
//   type and layout (an attention layer's Q, K and V projections, each with
//   its head split; cross-attention's K and V) become one kernel, which the
//   CPU back end computes as one product with the weights stacked (with
//   stack_order = rows, each row block of the input loaded once for all).
// - prologue: a layer norm whose result only one linear kernel reads joins
//   that kernel, which normalizes rows where its product needs them instead
//   of writing the normalized tensor and reading it back.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"
#include "passes/KernelUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::synth {
#define GEN_PASS_DEF_FUSEPROJECTIONS
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

/// The first op of a kernel's body that is not a copied position.
Operation *firstOp(KernelOp kernel) {
  for (Operation &op : kernel.getBody().front().without_terminator()) {
    if (!isa<ToIndexOp>(op)) {
      return &op;
    }
  }
  return nullptr;
}

/// A linear that may share its input's rows with others: a loose
/// synth.linear, or a kernel whose first op is one reading a kernel input.
struct Projection {
  Operation *unit;
  LinearOp linear;
  /// The linear's input as a value of the enclosing block.
  Value input;
};

std::optional<Projection> asProjection(Operation *op) {
  if (auto linear = dyn_cast<LinearOp>(op)) {
    return Projection{op, linear, linear.getInput()};
  }
  auto kernel = dyn_cast<KernelOp>(op);
  if (!kernel) {
    return std::nullopt;
  }
  auto linear = dyn_cast_or_null<LinearOp>(firstOp(kernel));
  auto arg = linear ? dyn_cast<BlockArgument>(linear.getInput()) : nullptr;
  if (!arg) {
    return std::nullopt;
  }
  return Projection{op, linear, kernel->getOperand(arg.getArgNumber())};
}

/// The op of `block` that holds `op` (itself, or a kernel around it).
Operation *inBlock(Operation *op, Block &block) {
  return block.findAncestorOpInBlock(*op);
}

/// Whether every user of `unit`'s results comes after `last` in the block.
bool usedOnlyAfter(Operation *unit, Operation *last, Block &block) {
  for (Value result : unit->getResults()) {
    for (Operation *user : result.getUsers()) {
      Operation *at = inBlock(user, block);
      if (!at || at == last || !last->isBeforeInBlock(at)) {
        return false;
      }
    }
  }
  return true;
}

struct FuseProjectionsPass
    : public mlir::synth::impl::FuseProjectionsBase<FuseProjectionsPass> {
  using FuseProjectionsBase::FuseProjectionsBase;

  void runOnOperation() override {
    for (Block &block : getOperation().getBody()) {
      if (projections) {
        mergeProjections(block);
      }
      if (prologue) {
        fusePrologues(block);
      }
    }
  }

  void mergeProjections(Block &block) {
    SmallVector<Projection> all;
    for (Operation &op : block) {
      if (std::optional<Projection> p = asProjection(&op)) {
        all.push_back(*p);
      }
    }
    std::vector<bool> taken(all.size(), false);
    for (size_t first = 0; first < all.size(); ++first) {
      if (taken[first]) {
        continue;
      }
      SmallVector<size_t> group = {first};
      for (size_t c = first + 1; c < all.size(); ++c) {
        Projection &a = all[first], &p = all[c];
        if (taken[c] || p.input != a.input ||
            p.linear.getWeight().getType() != a.linear.getWeight().getType() ||
            p.linear.getTransposeWeight() != a.linear.getTransposeWeight()) {
          continue;
        }
        // The joint kernel sits where its last member is: every member's
        // results must be used after it.
        if (!llvm::all_of(group, [&](size_t m) {
              return usedOnlyAfter(all[m].unit, p.unit, block);
            })) {
          continue;
        }
        group.push_back(c);
      }
      if (group.size() < 2) {
        continue;
      }
      SmallVector<Operation *> units;
      for (size_t m : group) {
        taken[m] = true;
        units.push_back(all[m].unit);
      }
      fuseIntoKernel(units, "fused");
    }
  }

  void fusePrologues(Block &block) {
    SmallVector<LayerNormOp> norms;
    for (Operation &op : block) {
      if (auto norm = dyn_cast<LayerNormOp>(op)) {
        norms.push_back(norm);
      }
    }
    for (LayerNormOp norm : norms) {
      Value normalized = norm.getResult();
      if (normalized.use_empty()) {
        continue;
      }
      // One linear or one kernel reads it, and only as the input of its
      // linears.
      Operation *user = *normalized.getUsers().begin();
      if (user->getBlock() != &block ||
          !llvm::all_of(normalized.getUsers(),
                        [&](Operation *u) { return u == user; })) {
        continue;
      }
      if (auto linear = dyn_cast<LinearOp>(user)) {
        if (linear.getWeight() != normalized &&
            linear.getBias() != normalized) {
          fuseIntoKernel({norm.getOperation(), user}, "fused");
        }
        continue;
      }
      auto kernel = dyn_cast<KernelOp>(user);
      if (!kernel) {
        continue;
      }
      Block &body = kernel.getBody().front();
      bool onlyLinearInputs = true;
      bool anyLinear = false;
      for (OpOperand &use : normalized.getUses()) {
        BlockArgument arg = body.getArgument(use.getOperandNumber());
        for (OpOperand &inner : arg.getUses()) {
          auto linear = dyn_cast<LinearOp>(inner.getOwner());
          if (!linear || inner.getOperandNumber() != 0) {
            onlyLinearInputs = false;
          } else {
            anyLinear = true;
          }
        }
      }
      if (!onlyLinearInputs || !anyLinear) {
        continue;
      }
      fuseIntoKernel({norm.getOperation(), kernel.getOperation()}, "fused");
    }
  }
};

} // namespace
