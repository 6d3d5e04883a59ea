//===- FuseAttention.cpp - score ops + attend -> fused_attention ----------===//
//
// The fused op computes scores tile by tile inside the attention kernel, so
// the N x N score tensor that score ops + attend describe is never stored.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "dialect/SynthOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::synth {
#define GEN_PASS_DEF_FUSEATTENTION
#include "passes/Passes.h.inc"
} // namespace mlir::synth

using namespace mlir;
using namespace mlir::synth;

namespace {

/// One score function feeding an attend: its part attribute and operands.
struct ScorePart {
  ScorePartAttr attr;
  SmallVector<Value> operands;
};

/// The part computed by `op`, or failure when `op` is not a score op.
FailureOr<ScorePart> scorePartOf(Operation *op) {
  MLIRContext *ctx = op->getContext();
  Builder b(ctx);
  auto part = [&](ScoreKind kind, FloatAttr scale, int64_t maxLen) {
    return ScorePart{ScorePartAttr::get(ctx, kind, scale,
                                        maxLen ? b.getI64IntegerAttr(maxLen)
                                               : IntegerAttr()),
                     SmallVector<Value>(op->getOperands())};
  };
  if (auto dot = dyn_cast<DotScoresOp>(op)) {
    return part(ScoreKind::Dot,
                b.getF32FloatAttr(static_cast<float>(dot.getEffectiveScale())),
                0);
  }
  if (auto dense = dyn_cast<DenseScoresOp>(op)) {
    return part(ScoreKind::Dense, FloatAttr(), dense.getMaxLen());
  }
  if (auto random = dyn_cast<RandomScoresOp>(op)) {
    return part(ScoreKind::Random, FloatAttr(), random.getMaxLen());
  }
  if (auto fr = dyn_cast<FactorizedRandomScoresOp>(op)) {
    return part(ScoreKind::FactorizedRandom, FloatAttr(), fr.getMaxLen());
  }
  if (auto fd = dyn_cast<FactorizedDenseScoresOp>(op)) {
    return part(ScoreKind::FactorizedDense, FloatAttr(), fd.getMaxLen());
  }
  return failure();
}

/// Replaces `attend` by a fused attention when its scores come from score
/// ops (`fuseScores`), or fixed random attention by attention_probs +
/// attend_probs (`fixedRandom`); returns whether it did.
bool fuse(AttendOp attend, bool fuseScores, bool fixedRandom) {
  Operation *producer = attend.getScores().getDefiningOp();
  if (!producer) {
    return false;
  }
  // Fixed random attention with a fixed mask: its weights depend on R alone,
  // so they are computed once (attention_probs) and applied (attend_probs).
  if (auto random = dyn_cast<RandomScoresOp>(producer)) {
    if (fixedRandom && !random.getTrainable() && !attend.getKeyMask() &&
        !attend.getQueryOffset()) {
      OpBuilder b(attend);
      auto probs = AttentionProbsOp::create(
          b, attend.getLoc(), random.getType(), random.getR(),
          random.getMaxLenAttr(), attend.getCausalAttr());
      auto out = AttendProbsOp::create(b, attend.getLoc(), attend.getType(),
                                       probs, attend.getValues());
      attend.replaceAllUsesWith(out.getResult());
      attend.erase();
      return true;
    }
  }
  if (!fuseScores) {
    return false;
  }
  SmallVector<ScorePart> parts;
  Value logits;
  if (auto mixture = dyn_cast<MixtureScoresOp>(producer)) {
    for (Value partScores : mixture.getParts()) {
      Operation *partOp = partScores.getDefiningOp();
      FailureOr<ScorePart> part =
          partOp ? scorePartOf(partOp) : FailureOr<ScorePart>(failure());
      if (failed(part)) {
        return false;
      }
      parts.push_back(*part);
    }
    // A one-part mixture is its part (softmax over one logit is 1).
    if (parts.size() > 1) {
      logits = mixture.getLogits();
    }
  } else {
    FailureOr<ScorePart> part = scorePartOf(producer);
    if (failed(part)) {
      return false;
    }
    parts.push_back(*part);
  }

  OpBuilder b(attend);
  SmallVector<Attribute> attrs;
  SmallVector<Value> operands;
  for (ScorePart &part : parts) {
    attrs.push_back(part.attr);
    operands.append(part.operands);
  }
  auto fused = FusedAttentionOp::create(
      b, attend.getLoc(), attend.getType(), b.getArrayAttr(attrs), operands,
      logits, attend.getValues(), attend.getKeyMask(), attend.getQueryOffset(),
      attend.getCausalAttr());
  attend.replaceAllUsesWith(fused.getResult());
  attend.erase();
  return true;
}

struct FuseAttentionPass
    : public mlir::synth::impl::FuseAttentionBase<FuseAttentionPass> {
  using FuseAttentionBase::FuseAttentionBase;

  void runOnOperation() override {
    SmallVector<AttendOp> attends;
    getOperation().walk([&](AttendOp op) { attends.push_back(op); });
    for (AttendOp attend : attends) {
      fuse(attend, fuseScores, fixedRandom);
    }
    // Score ops (and mixtures) whose only user was an attend are now dead.
    IRRewriter rewriter(&getContext());
    (void)runRegionDCE(rewriter, getOperation()->getRegions());
  }
};

} // namespace
