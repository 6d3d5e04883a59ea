//===- SynthGradients.cpp - vector-Jacobian products of the synth ops -----===//
//
// The DifferentiableOpInterface of every model op, attached as external
// models so that the reverse-mode rules live together, apart from shapes and
// folds. Each rule reads the op's operands and results (never stored
// probabilities) and emits the gradient ops of SynthGradOps.td; the
// autodiff pass (passes/Autodiff.cpp) composes them.
//
//===----------------------------------------------------------------------===//

#include "dialect/SynthOps.h"

#include "mlir/IR/Builders.h"

using namespace mlir;
using namespace mlir::synth;

namespace {

/// The base of every rule below.
template <typename Model, typename OpT>
struct VJP : public DifferentiableOpInterface::ExternalModel<Model, OpT> {};

struct EmbeddingVJP : VJP<EmbeddingVJP, EmbeddingOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto e = cast<EmbeddingOp>(op);
    out.push_back(EmbeddingGradOp::create(
        b, op->getLoc(), e.getTable().getType(), e.getIds(), dys[0]));
    out.push_back(Value());
    return success();
  }
};

struct LinearVJP : VJP<LinearVJP, LinearOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto l = cast<LinearOp>(op);
    Location loc = op->getLoc();
    // dx = dy W^T: the same weight through the other orientation.
    auto dx = LinearOp::create(b, loc, l.getInput().getType(), dys[0],
                               l.getWeight(), Value());
    dx.setTransposeWeight(!l.getTransposeWeight());
    out.push_back(dx);
    auto dw = LinearWeightGradOp::create(b, loc, l.getWeight().getType(),
                                         l.getInput(), dys[0]);
    dw.setTransposeWeight(l.getTransposeWeight());
    out.push_back(dw);
    if (l.getBias()) {
      out.push_back(SumRowsOp::create(b, loc, l.getBias().getType(), dys[0]));
    }
    return success();
  }
};

struct LayerNormVJP : VJP<LayerNormVJP, LayerNormOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto ln = cast<LayerNormOp>(op);
    Location loc = op->getLoc();
    out.push_back(LayerNormGradOp::create(b, loc, ln.getInput().getType(),
                                          ln.getInput(), ln.getGamma(), dys[0],
                                          ln.getEpsilonAttr()));
    out.push_back(LayerNormGammaGradOp::create(b, loc, ln.getGamma().getType(),
                                               ln.getInput(), dys[0],
                                               ln.getEpsilonAttr()));
    out.push_back(SumRowsOp::create(b, loc, ln.getBeta().getType(), dys[0]));
    return success();
  }
};

struct ReluVJP : VJP<ReluVJP, ReluOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto r = cast<ReluOp>(op);
    out.push_back(ReluGradOp::create(b, op->getLoc(), r.getType(),
                                     r.getResult(), dys[0]));
    return success();
  }
};

struct GeluVJP : VJP<GeluVJP, GeluOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto g = cast<GeluOp>(op);
    out.push_back(GeluGradOp::create(b, op->getLoc(), g.getType(), g.getInput(),
                                     dys[0], g.getApproximationAttr()));
    return success();
  }
};

struct AddVJP : VJP<AddVJP, AddOp> {
  LogicalResult buildVectorJacobianProduct(Operation *, OpBuilder &,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    out.push_back(dys[0]);
    out.push_back(dys[0]);
    return success();
  }
};

struct SplitHeadsVJP : VJP<SplitHeadsVJP, SplitHeadsOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    out.push_back(MergeHeadsOp::create(b, op->getLoc(),
                                       op->getOperand(0).getType(), dys[0]));
    return success();
  }
};

struct MergeHeadsVJP : VJP<MergeHeadsVJP, MergeHeadsOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    out.push_back(SplitHeadsOp::create(b, op->getLoc(),
                                       op->getOperand(0).getType(), dys[0]));
    return success();
  }
};

struct AddPositionsVJP : VJP<AddPositionsVJP, AddPositionsOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto p = cast<AddPositionsOp>(op);
    if (p.getOffset()) {
      return op->emitOpError("has no gradient with a position offset (a "
                             "decoding step, not a training graph)");
    }
    out.push_back(dys[0]);
    out.push_back(PositionsGradOp::create(b, op->getLoc(),
                                          p.getTable().getType(), dys[0]));
    return success();
  }
};

struct MeanPoolVJP : VJP<MeanPoolVJP, MeanPoolOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto m = cast<MeanPoolOp>(op);
    out.push_back(MeanPoolGradOp::create(
        b, op->getLoc(), m.getInput().getType(), dys[0], m.getMask()));
    out.push_back(Value());
    return success();
  }
};

struct CrossEntropyVJP : VJP<CrossEntropyVJP, CrossEntropyOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto ce = cast<CrossEntropyOp>(op);
    // A null cotangent is the loss being differentiated itself (seed 1).
    out.push_back(CrossEntropyGradOp::create(
        b, op->getLoc(), ce.getLogits().getType(), ce.getLogits(),
        ce.getTargets(), dys[0], ce.getIgnoreIndexAttr()));
    out.push_back(Value());
    return success();
  }
};

struct FusedAttentionVJP : VJP<FusedAttentionVJP, FusedAttentionOp> {
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto fa = cast<FusedAttentionOp>(op);
    if (fa.getQueryOffset()) {
      return op->emitOpError("has no gradient with a query offset (a "
                             "decoding step, not a training graph)");
    }
    // The softmax statistics once, then one gradient op per operand (score
    // operands, logits, values), each recomputing scores tile by tile; the
    // autodiff pass drops the unused ones.
    auto resultShape = fa.getResult().getType().getShape();
    auto statsType =
        RankedTensorType::get(resultShape.drop_back(), b.getF32Type());
    Value stats = AttentionStatsOp::create(
        b, op->getLoc(), statsType, fa.getScorePartsAttr(),
        fa.getScoreOperands(), fa.getMixtureLogits(), fa.getValues(),
        fa.getKeyMask(), fa.getCausalAttr());
    int64_t count =
        fa.getScoreOperands().size() + (fa.getMixtureLogits() ? 1 : 0) + 1;
    for (int64_t wrt = 0; wrt < count; ++wrt) {
      Value operand = op->getOperand(wrt);
      out.push_back(FusedAttentionGradOp::create(
          b, op->getLoc(), operand.getType(), fa.getScorePartsAttr(),
          fa.getScoreOperands(), fa.getMixtureLogits(), fa.getValues(),
          fa.getKeyMask(), fa.getResult(), dys[0], stats,
          b.getI64IntegerAttr(wrt), fa.getCausalAttr()));
    }
    for (unsigned i = count; i < op->getNumOperands(); ++i) {
      out.push_back(Value()); // key mask
    }
    return success();
  }
};

struct AttendProbsVJP : VJP<AttendProbsVJP, AttendProbsOp> {
  bool isDifferentiableOperand(Operation *, unsigned index) const {
    // The probabilities of fixed random attention depend on a frozen R.
    return index == 1;
  }
  LogicalResult buildVectorJacobianProduct(Operation *op, OpBuilder &b,
                                           ValueRange dys,
                                           SmallVectorImpl<Value> &out) const {
    auto ap = cast<AttendProbsOp>(op);
    if (ap.getTransposeProbs()) {
      return op->emitOpError("has no gradient when transposed");
    }
    out.push_back(Value());
    auto dv = AttendProbsOp::create(b, op->getLoc(), ap.getValues().getType(),
                                    ap.getProbs(), dys[0]);
    dv.setTransposeProbs(true);
    out.push_back(dv);
    return success();
  }
};

} // namespace

void mlir::synth::registerDifferentiableModels(MLIRContext &context) {
  EmbeddingOp::attachInterface<EmbeddingVJP>(context);
  LinearOp::attachInterface<LinearVJP>(context);
  LayerNormOp::attachInterface<LayerNormVJP>(context);
  ReluOp::attachInterface<ReluVJP>(context);
  GeluOp::attachInterface<GeluVJP>(context);
  AddOp::attachInterface<AddVJP>(context);
  SplitHeadsOp::attachInterface<SplitHeadsVJP>(context);
  MergeHeadsOp::attachInterface<MergeHeadsVJP>(context);
  AddPositionsOp::attachInterface<AddPositionsVJP>(context);
  MeanPoolOp::attachInterface<MeanPoolVJP>(context);
  CrossEntropyOp::attachInterface<CrossEntropyVJP>(context);
  FusedAttentionOp::attachInterface<FusedAttentionVJP>(context);
  AttendProbsOp::attachInterface<AttendProbsVJP>(context);
}
