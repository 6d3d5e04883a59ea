//===- Autodiff.cpp - reverse-mode differentiation of the loss ------------===//
//
// loss -> gradients: the function is cloned, the reverse sweep appended
// before its return, and the return extended with one gradient per trainable
// parameter. The rules are the ops' DifferentiableOpInterface
// (dialect/SynthGradients.cpp); this pass only decides what is active, walks
// backwards, sums gradients of values used more than once, and cleans up.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::synth {
#define GEN_PASS_DEF_AUTODIFF
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

bool isTrainableParameter(func::FuncOp func, unsigned index) {
  if (!func.getArgAttr(index, "synth.param")) {
    return false;
  }
  auto trainable = func.getArgAttrOfType<BoolAttr>(index, "synth.trainable");
  return !trainable || trainable.getValue();
}

LogicalResult differentiate(func::FuncOp func) {
  if (!func.getBody().hasOneBlock()) {
    return func.emitError("synth-autodiff expects a single-block function");
  }
  Block &block = func.getBody().front();
  auto ret = cast<func::ReturnOp>(block.getTerminator());
  if (ret.getNumOperands() != 1 ||
      !ret.getOperand(0).getDefiningOp<CrossEntropyOp>()) {
    return func.emitError("synth-autodiff: @")
           << func.getSymName()
           << " must return one value, the result of synth.cross_entropy";
  }
  Value loss = ret.getOperand(0);

  // Activity: values that depend on a trainable parameter.
  DenseSet<Value> active;
  SmallVector<unsigned> trainable;
  for (BlockArgument arg : block.getArguments()) {
    if (isTrainableParameter(func, arg.getArgNumber())) {
      active.insert(arg);
      trainable.push_back(arg.getArgNumber());
    }
  }
  if (trainable.empty()) {
    return func.emitError("synth-autodiff: @")
           << func.getSymName() << " has no trainable parameter";
  }
  for (Operation &op : block.without_terminator()) {
    if (llvm::any_of(op.getOperands(),
                     [&](Value v) { return active.contains(v); })) {
      for (Value result : op.getResults()) {
        if (isa<FloatType>(getElementTypeOrSelf(result.getType()))) {
          active.insert(result);
        }
      }
    }
  }
  if (!active.contains(loss)) {
    return func.emitError("synth-autodiff: the loss of @")
           << func.getSymName() << " does not depend on any parameter";
  }

  // The reverse sweep, emitted before the return.
  OpBuilder b(ret);
  DenseMap<Value, Value> cotangent;
  auto accumulate = [&](Value value, Value gradient) {
    auto [it, inserted] = cotangent.try_emplace(value, gradient);
    if (!inserted) {
      it->second = AddOp::create(b, value.getLoc(), value.getType(), it->second,
                                 gradient);
    }
  };
  // The seed: a null cotangent of the loss stands for d loss / d loss = 1.
  SmallVector<Operation *> ops;
  for (Operation &op : block.without_terminator()) {
    ops.push_back(&op);
  }
  Operation *root = loss.getDefiningOp();
  for (Operation *op : llvm::reverse(ops)) {
    bool isRoot = op == root;
    SmallVector<Value> dys;
    bool any = isRoot;
    for (Value result : op->getResults()) {
      Value dy = cotangent.lookup(result);
      any |= static_cast<bool>(dy);
      dys.push_back(dy);
    }
    if (!any) {
      continue;
    }
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    if (!rule) {
      return op->emitOpError(
          "has no gradient rule (DifferentiableOpInterface), but the loss "
          "depends on its result");
    }
    SmallVector<Value> dxs;
    if (failed(rule.buildVectorJacobianProduct(b, dys, dxs))) {
      return failure();
    }
    if (dxs.size() != op->getNumOperands()) {
      return op->emitOpError("gradient rule returned ")
             << dxs.size() << " gradients for " << op->getNumOperands()
             << " operands";
    }
    for (auto [operand, dx] : llvm::zip(op->getOperands(), dxs)) {
      if (dx && active.contains(operand)) {
        accumulate(operand, dx);
      }
    }
  }

  // Return the loss and the gradient of every trainable parameter.
  SmallVector<Value> results = {loss};
  for (unsigned index : trainable) {
    Value gradient = cotangent.lookup(block.getArgument(index));
    if (!gradient) {
      auto name = func.getArgAttrOfType<StringAttr>(index, "synth.param");
      return func.emitError("synth-autodiff: parameter '")
             << name.getValue() << "' does not influence the loss";
    }
    results.push_back(gradient);
  }
  func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  func.setFunctionType(FunctionType::get(func.getContext(),
                                         func.getArgumentTypes(),
                                         ValueRange(results).getTypes()));
  // setFunctionType keeps the old result attributes; set all of them.
  MLIRContext *ctx = func.getContext();
  auto named = [&](const Twine &name) {
    return DictionaryAttr::get(
        ctx, {NamedAttribute(StringAttr::get(ctx, "synth.output"),
                             StringAttr::get(ctx, name))});
  };
  SmallVector<DictionaryAttr> resultAttrs = {named("loss")};
  for (unsigned index : trainable) {
    auto name = func.getArgAttrOfType<StringAttr>(index, "synth.param");
    resultAttrs.push_back(named("grad." + name.getValue()));
  }
  func.setAllResultAttrs(resultAttrs);

  // Gradient ops of inactive operands were built but nobody reads them.
  // (Collected first: a reverse iterator refers to the op after the one it
  // yields, which erasing would leave dangling.)
  SmallVector<Operation *> all;
  for (Operation &op : block.without_terminator()) {
    all.push_back(&op);
  }
  for (Operation *op : llvm::reverse(all)) {
    if (op->use_empty() && isMemoryEffectFree(op)) {
      op->erase();
    }
  }
  return success();
}

struct AutodiffPass : public mlir::synth::impl::AutodiffBase<AutodiffPass> {
  using AutodiffBase::AutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto source_ = module.lookupSymbol<func::FuncOp>(source);
    if (!source_) {
      module.emitError("synth-autodiff: no function @") << source;
      return signalPassFailure();
    }
    if (module.lookupSymbol(target)) {
      module.emitError("synth-autodiff: @") << target << " already exists";
      return signalPassFailure();
    }
    OpBuilder b(module.getContext());
    b.setInsertionPointAfter(source_);
    // Named after the source until it succeeds, so that errors name the
    // function the user wrote.
    auto gradients = cast<func::FuncOp>(b.clone(*source_.getOperation()));
    if (failed(differentiate(gradients))) {
      gradients.erase();
      return signalPassFailure();
    }
    gradients.setSymName(target);
  }
};

} // namespace
