//===- Optimizer.cpp - gradients + AdamW -> train_step --------------------===//
//
// One optimizer step appended to the gradient function: clipping by the
// global gradient norm, the learning-rate schedule, AdamW per parameter, and
// results that the back ends write back in place of the parameters and
// moments they update (`synth.updates`).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::synth {
#define GEN_PASS_DEF_OPTIMIZER
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

struct OptimizerPass : public mlir::synth::impl::OptimizerBase<OptimizerPass> {
  using OptimizerBase::OptimizerBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto gradients = module.lookupSymbol<func::FuncOp>("gradients");
    if (!gradients) {
      module.emitError("synth-optimizer: no function @gradients (run "
                       "synth-autodiff first)");
      return signalPassFailure();
    }
    if (module.lookupSymbol("train_step")) {
      module.emitError("synth-optimizer: @train_step already exists");
      return signalPassFailure();
    }
    if (!(learningRate > 0) || warmupSteps < 0 ||
        !(finalRatio >= 0 && finalRatio <= 1) || !(maxGradNorm >= 0) ||
        !(weightDecay >= 0)) {
      module.emitError("synth-optimizer: expected lr > 0, warmup-steps >= 0, "
                       "final-lr-ratio in [0, 1], max-grad-norm >= 0 and "
                       "weight-decay >= 0");
      return signalPassFailure();
    }
    OpBuilder b(module.getContext());
    b.setInsertionPointAfter(gradients);
    auto step = cast<func::FuncOp>(b.clone(*gradients.getOperation()));
    step.setSymName("train_step");
    if (failed(appendOptimizer(step))) {
      step.erase();
      return signalPassFailure();
    }
    if (!keepGradients) {
      gradients.erase();
    }
  }

  LogicalResult appendOptimizer(func::FuncOp func) {
    MLIRContext *ctx = func.getContext();
    Block &block = func.getBody().front();
    auto ret = cast<func::ReturnOp>(block.getTerminator());
    Location loc = ret.getLoc();

    // The parameter each gradient belongs to, from the result names.
    SmallVector<std::pair<BlockArgument, Value>> pairs;
    for (unsigned i = 1; i < ret.getNumOperands(); ++i) {
      auto name = func.getResultAttrOfType<StringAttr>(i, "synth.output");
      if (!name || !name.getValue().starts_with("grad.")) {
        return func.emitError("synth-optimizer: result #")
               << i << " of @gradients is not named grad.<parameter>";
      }
      StringRef param = name.getValue().drop_front(5);
      BlockArgument arg;
      for (BlockArgument a : block.getArguments()) {
        auto p =
            func.getArgAttrOfType<StringAttr>(a.getArgNumber(), "synth.param");
        if (p && p.getValue() == param) {
          arg = a;
        }
      }
      if (!arg) {
        return func.emitError("synth-optimizer: no argument for parameter '")
               << param << "'";
      }
      pairs.push_back({arg, ret.getOperand(i)});
    }

    // New arguments: the step, the run's length, and two moments each.
    auto scalarI32 = RankedTensorType::get({}, IntegerType::get(ctx, 32));
    auto addArgument = [&](Type type, StringRef kind, StringRef name) {
      unsigned index = func.getNumArguments();
      if (failed(func.insertArgument(index, type, {}, loc))) {
        return BlockArgument();
      }
      func.setArgAttr(index, kind, StringAttr::get(ctx, name));
      return func.getArgument(index);
    };
    BlockArgument stepArg = addArgument(scalarI32, "synth.input", "step");
    BlockArgument totalArg =
        addArgument(scalarI32, "synth.input", "total_steps");
    SmallVector<std::pair<BlockArgument, BlockArgument>> moments;
    for (auto [param, grad] : pairs) {
      auto name =
          func.getArgAttrOfType<StringAttr>(param.getArgNumber(), "synth.param")
              .getValue();
      auto type = RankedTensorType::get(
          cast<RankedTensorType>(param.getType()).getShape(),
          Float32Type::get(ctx));
      BlockArgument m =
          addArgument(type, "synth.state", ("adam.m." + name).str());
      BlockArgument v =
          addArgument(type, "synth.state", ("adam.v." + name).str());
      moments.push_back({m, v});
    }
    if (!stepArg || !totalArg ||
        llvm::any_of(moments, [](auto mv) { return !mv.first; })) {
      return func.emitError("synth-optimizer: cannot add arguments");
    }

    OpBuilder b(ret);
    auto scalarF32 = RankedTensorType::get({}, Float32Type::get(ctx));
    Value sqNorm;
    for (auto [param, grad] : pairs) {
      Value sq = SumSquaresOp::create(b, loc, scalarF32, grad);
      sqNorm = sqNorm ? AddOp::create(b, loc, scalarF32, sqNorm, sq).getResult()
                      : sq;
    }
    Value lr = LearningRateOp::create(
        b, loc, scalarF32, stepArg, totalArg,
        b.getF32FloatAttr(static_cast<float>(learningRate)),
        b.getI64IntegerAttr(warmupSteps),
        b.getF32FloatAttr(static_cast<float>(finalRatio)));

    SmallVector<Value> results = {ret.getOperand(0), lr, sqNorm};
    SmallVector<int64_t> updates = {-1, -1, -1};
    for (auto [pair, mv] : llvm::zip(pairs, moments)) {
      auto [param, grad] = pair;
      bool decay = !func.getArgAttr(param.getArgNumber(), "synth.no_decay");
      auto adam = AdamWOp::create(
          b, loc, param.getType(), mv.first.getType(), mv.second.getType(),
          param, grad, mv.first, mv.second, lr, stepArg,
          maxGradNorm > 0 ? sqNorm : Value(),
          b.getF32FloatAttr(static_cast<float>(beta1)),
          b.getF32FloatAttr(static_cast<float>(beta2)),
          b.getF32FloatAttr(static_cast<float>(epsilon)),
          b.getF32FloatAttr(decay ? static_cast<float>(weightDecay) : 0.0f),
          b.getF32FloatAttr(static_cast<float>(maxGradNorm)));
      results.append({adam.getNewParam(), adam.getNewM(), adam.getNewV()});
      updates.append({param.getArgNumber(), mv.first.getArgNumber(),
                      mv.second.getArgNumber()});
    }
    func::ReturnOp::create(b, loc, results);
    ret.erase();
    func.setFunctionType(FunctionType::get(ctx, func.getArgumentTypes(),
                                           ValueRange(results).getTypes()));
    // setFunctionType keeps the old result attributes; set all of them:
    // names for the first three, in-place targets for the rest.
    auto attr = [&](StringRef key, Attribute value) {
      return DictionaryAttr::get(
          ctx, {NamedAttribute(StringAttr::get(ctx, key), value)});
    };
    SmallVector<DictionaryAttr> resultAttrs;
    for (const char *name : {"loss", "learning_rate", "grad_sq_norm"}) {
      resultAttrs.push_back(attr("synth.output", StringAttr::get(ctx, name)));
    }
    for (unsigned i = 3; i < results.size(); ++i) {
      resultAttrs.push_back(
          attr("synth.updates",
               IntegerAttr::get(IntegerType::get(ctx, 64), updates[i])));
    }
    func.setAllResultAttrs(resultAttrs);
    return success();
  }
};

} // namespace
