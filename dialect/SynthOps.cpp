//===- SynthOps.cpp - verifiers, folders and interfaces of synth ops ------===//
//
// Shape verification for every op (messages name the operand, the expected
// shape with its dimension names, and the actual shape), the folders, and the
// TilingInterface implementation of synth.fused_attention.
//
//===----------------------------------------------------------------------===//

#include "dialect/SynthOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>

using namespace mlir;
using namespace mlir::synth;

//===----------------------------------------------------------------------===//
// Shape checking helpers
//===----------------------------------------------------------------------===//

namespace {

/// A dimension that a check does not constrain (and that prints as "?").
constexpr int64_t kAny = ShapedType::kDynamic;

/// Formats dims as "[4, 64, 256]", with "?" for unconstrained/dynamic ones.
std::string formatDims(ArrayRef<int64_t> dims) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << '[';
  llvm::interleaveComma(dims, os, [&](int64_t dim) {
    if (ShapedType::isDynamic(dim)) {
      os << '?';
    } else {
      os << dim;
    }
  });
  os << ']';
  return text;
}

/// Dimensions agree unless both are known and differ.
bool dimMatches(int64_t expected, int64_t actual) {
  return ShapedType::isDynamic(expected) || ShapedType::isDynamic(actual) ||
         expected == actual;
}

/// Formats a float attribute value as a user wrote it ("0.999", "-0.5").
std::string formatFloat(const APFloat &value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value.convertToDouble());
  return text;
}

ArrayRef<int64_t> shapeOf(Type type) {
  return cast<RankedTensorType>(type).getShape();
}
ArrayRef<int64_t> shapeOf(Value value) { return shapeOf(value.getType()); }

/// Emits the verifier messages of one op, all in the same form:
///   expected W2 of shape [heads, k, L] = [4, 64, 256], got [4, 64, 128]
class ShapeChecker {
public:
  explicit ShapeChecker(Operation *op) : op(op) {}

  /// Checks that `actual` has the rank of `expected` and matching dims.
  LogicalResult expect(StringRef name, StringRef dimNames,
                       ArrayRef<int64_t> expected, Type actual) {
    ArrayRef<int64_t> shape = shapeOf(actual);
    bool ok = shape.size() == expected.size();
    for (size_t i = 0; ok && i < shape.size(); ++i) {
      ok = dimMatches(expected[i], shape[i]);
    }
    if (ok) {
      return success();
    }
    return op->emitOpError()
           << "expected " << name << " of shape " << dimNames << " = "
           << formatDims(expected) << ", got " << formatDims(shape);
  }
  LogicalResult expect(StringRef name, StringRef dimNames,
                       ArrayRef<int64_t> expected, Value actual) {
    return expect(name, dimNames, expected, actual.getType());
  }

  /// Checks only the rank; used for the operand that defines the dims.
  LogicalResult expectRank(StringRef name, StringRef dimNames, int64_t rank,
                           Type actual) {
    ArrayRef<int64_t> shape = shapeOf(actual);
    if (static_cast<int64_t>(shape.size()) == rank) {
      return success();
    }
    return op->emitOpError()
           << "expected " << name << " of rank " << rank << " " << dimNames
           << ", got " << formatDims(shape);
  }
  LogicalResult expectRank(StringRef name, StringRef dimNames, int64_t rank,
                           Value actual) {
    return expectRank(name, dimNames, rank, actual.getType());
  }

  /// Checks `count` <= `limit` when both are known.
  LogicalResult expectAtMost(StringRef what, int64_t count, StringRef limitName,
                             int64_t limit) {
    if (ShapedType::isDynamic(count) || ShapedType::isDynamic(limit) ||
        count <= limit) {
      return success();
    }
    return op->emitOpError() << what << " = " << count << " exceeds "
                             << limitName << " = " << limit;
  }

  Operation *getOp() const { return op; }

private:
  Operation *op;
};

/// All floating-point operands and results of `op` share one element type.
/// `except` lists result indices exempt from the rule (f32 loss, moments).
LogicalResult
verifySameFloatElementType(Operation *op,
                           ArrayRef<unsigned> exemptResults = {}) {
  Type reference;
  std::string referenceName;
  auto check = [&](Type type, const std::string &name) -> LogicalResult {
    Type element = getElementTypeOrSelf(type);
    if (!isa<FloatType>(element)) {
      return success();
    }
    if (!reference) {
      reference = element;
      referenceName = name;
      return success();
    }
    if (element == reference) {
      return success();
    }
    return op->emitOpError()
           << "expected " << name << " to have element type " << reference
           << " (as " << referenceName << "), got " << element;
  };
  for (OpOperand &operand : op->getOpOperands()) {
    if (failed(
            check(operand.get().getType(),
                  "operand #" + std::to_string(operand.getOperandNumber())))) {
      return failure();
    }
  }
  for (OpResult result : op->getResults()) {
    if (llvm::is_contained(exemptResults, result.getResultNumber())) {
      continue;
    }
    if (failed(check(result.getType(),
                     "result #" + std::to_string(result.getResultNumber())))) {
      return failure();
    }
  }
  return success();
}

/// The batch and head counts a score function's operands imply; batch is kAny
/// for the variants that do not read the input.
struct ScoreDims {
  int64_t batch = kAny;
  int64_t heads = kAny;
};

/// Verifies the operands of one score function producing scores for `queries`
/// query rows and `keys` key columns. `standalone` is true for the score ops,
/// whose parameters are whole ([heads, L, ...]); inside a fused attention the
/// query-indexed parameters (R, R1) may be a query tile with >= `queries` rows.
FailureOr<ScoreDims> verifyScoreOperands(ShapeChecker &c, ScoreKind kind,
                                         ValueRange operands, int64_t maxLen,
                                         int64_t queries, int64_t keys,
                                         bool standalone) {
  ScoreDims dims;
  StringRef keyName = standalone ? "sequence length N" : "key length M";
  if (kind != ScoreKind::Dot && maxLen <= 0) {
    return c.getOp()->emitOpError()
           << "max_len must be positive, got " << maxLen;
  }
  if (kind != ScoreKind::Dot &&
      failed(c.expectAtMost(keyName, keys, "max_len L", maxLen))) {
    return failure();
  }
  // Query-indexed parameters: whole ([.., L, ..]) or a tile of >= N rows.
  auto checkQueryRows = [&](StringRef name, Value value) -> LogicalResult {
    int64_t rows = shapeOf(value)[1];
    if (standalone || ShapedType::isDynamic(rows) ||
        ShapedType::isDynamic(queries) || rows >= queries) {
      return success();
    }
    return c.getOp()->emitOpError()
           << "expected " << name << " to have at least N = " << queries
           << " query rows, got " << rows;
  };
  int64_t rowsOfL = standalone ? maxLen : kAny;

  switch (kind) {
  case ScoreKind::Dot: {
    Value q = operands[0], k = operands[1];
    if (failed(c.expect("q", "[batch, heads, N, head_dim]",
                        {kAny, kAny, queries, kAny}, q))) {
      return failure();
    }
    ArrayRef<int64_t> qs = shapeOf(q);
    if (failed(c.expect("k", "[batch, heads, M, head_dim]",
                        {qs[0], qs[1], keys, qs[3]}, k))) {
      return failure();
    }
    dims = {qs[0], qs[1]};
    return dims;
  }
  case ScoreKind::Dense:
  case ScoreKind::FactorizedDense: {
    Value x = operands[0], w1 = operands[1], b1 = operands[2];
    if (failed(
            c.expect("x", "[batch, N, d_model]", {kAny, queries, kAny}, x))) {
      return failure();
    }
    int64_t dModel = shapeOf(x)[2];
    if (failed(
            c.expect("W1", "[heads, d_model, k]", {kAny, dModel, kAny}, w1))) {
      return failure();
    }
    int64_t heads = shapeOf(w1)[0], hidden = shapeOf(w1)[2];
    if (failed(c.expect("b1", "[heads, k]", {heads, hidden}, b1))) {
      return failure();
    }
    dims = {shapeOf(x)[0], heads};
    if (kind == ScoreKind::Dense) {
      if (failed(c.expect("W2", "[heads, k, L]", {heads, hidden, maxLen},
                          operands[3])) ||
          failed(c.expect("b2", "[heads, L]", {heads, maxLen}, operands[4]))) {
        return failure();
      }
      return dims;
    }
    Value wa = operands[3], ba = operands[4], wb = operands[5],
          bb = operands[6];
    if (failed(c.expect("WA", "[heads, k, a]", {heads, hidden, kAny}, wa))) {
      return failure();
    }
    int64_t a = shapeOf(wa)[2];
    if (failed(c.expect("bA", "[heads, a]", {heads, a}, ba)) ||
        failed(c.expect("WB", "[heads, k, b]", {heads, hidden, kAny}, wb))) {
      return failure();
    }
    int64_t b = shapeOf(wb)[2];
    if (failed(c.expect("bB", "[heads, b]", {heads, b}, bb))) {
      return failure();
    }
    if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) &&
        a * b != maxLen) {
      return c.getOp()->emitOpError()
             << "expected a * b = max_len L = " << maxLen << ", got " << a
             << " * " << b << " = " << a * b;
    }
    return dims;
  }
  case ScoreKind::Random: {
    Value r = operands[0];
    if (failed(c.expect("R", "[heads, L, L]", {kAny, rowsOfL, maxLen}, r)) ||
        failed(checkQueryRows("R", r))) {
      return failure();
    }
    dims.heads = shapeOf(r)[0];
    return dims;
  }
  case ScoreKind::FactorizedRandom: {
    Value r1 = operands[0], r2 = operands[1];
    if (failed(c.expect("R1", "[heads, L, rank]", {kAny, rowsOfL, kAny}, r1)) ||
        failed(checkQueryRows("R1", r1))) {
      return failure();
    }
    ArrayRef<int64_t> s1 = shapeOf(r1);
    if (failed(
            c.expect("R2", "[heads, L, rank]", {s1[0], maxLen, s1[2]}, r2))) {
      return failure();
    }
    dims.heads = s1[0];
    return dims;
  }
  }
  llvm_unreachable("unknown score kind");
}

/// Shared verifier of the four synthesized score ops: the result is
/// [batch, heads, N, N] (batched kinds) or [heads, N, N].
LogicalResult verifySynthesizedScores(Operation *op, ScoreKind kind,
                                      ValueRange operands, int64_t maxLen,
                                      bool batched) {
  ShapeChecker c(op);
  Type resultType = op->getResult(0).getType();
  StringRef resultDims = batched ? "[batch, heads, N, N]" : "[heads, N, N]";
  if (failed(c.expectRank("result", resultDims, batched ? 4 : 3, resultType))) {
    return failure();
  }
  ArrayRef<int64_t> rs = shapeOf(resultType);
  int64_t n = rs.back();
  if (failed(c.expect("result", resultDims,
                      batched ? SmallVector<int64_t>{kAny, kAny, n, n}
                              : SmallVector<int64_t>{kAny, n, n},
                      resultType))) {
    return failure();
  }
  FailureOr<ScoreDims> dims = verifyScoreOperands(c, kind, operands, maxLen,
                                                  /*queries=*/n, /*keys=*/n,
                                                  /*standalone=*/true);
  if (failed(dims)) {
    return failure();
  }
  SmallVector<int64_t> expected =
      batched ? SmallVector<int64_t>{dims->batch, dims->heads, n, n}
              : SmallVector<int64_t>{dims->heads, n, n};
  if (failed(c.expect("result", resultDims, expected, resultType))) {
    return failure();
  }
  return verifySameFloatElementType(op);
}

} // namespace

//===----------------------------------------------------------------------===//
// Model ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("table", "[vocab, d_model]", 2, getTable()))) {
    return failure();
  }
  SmallVector<int64_t> expected(shapeOf(getIds()));
  expected.push_back(shapeOf(getTable())[1]);
  if (failed(c.expect("result", "ids shape + [d_model]", expected,
                      getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult LinearOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (xs.empty()) {
    return emitOpError("expected input of rank >= 1 [..., in], got a scalar");
  }
  bool transposed = getTransposeWeight();
  StringRef weightDims = transposed ? "[out, in]" : "[in, out]";
  SmallVector<int64_t> expectedWeight =
      transposed ? SmallVector<int64_t>{kAny, xs.back()}
                 : SmallVector<int64_t>{xs.back(), kAny};
  if (failed(c.expect("W", weightDims, expectedWeight, getWeight()))) {
    return failure();
  }
  int64_t out = shapeOf(getWeight())[transposed ? 0 : 1];
  if (getBias() && failed(c.expect("bias", "[out]", {out}, getBias()))) {
    return failure();
  }
  SmallVector<int64_t> expected(xs.drop_back());
  expected.push_back(out);
  if (failed(
          c.expect("result", "[..., out]", expected, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult AddPositionsOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("input", "[batch, N, d_model]", 3, getInput()))) {
    return failure();
  }
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (failed(c.expect("table", "[L, d_model]", {kAny, xs[2]}, getTable())) ||
      failed(c.expectAtMost("sequence length N", xs[1], "position table L",
                            shapeOf(getTable())[0])) ||
      failed(c.expect("result", "input shape", xs, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult MeanPoolOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("input", "[batch, N, d]", 3, getInput()))) {
    return failure();
  }
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (failed(c.expect("mask", "[batch, N]", {xs[0], xs[1]}, getMask())) ||
      failed(c.expect("result", "[batch, d]", {xs[0], xs[2]},
                      getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult LayerNormOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (xs.empty()) {
    return emitOpError("expected input of rank >= 1 [..., d], got a scalar");
  }
  if (failed(c.expect("gamma", "[d]", {xs.back()}, getGamma())) ||
      failed(c.expect("beta", "[d]", {xs.back()}, getBeta())) ||
      failed(c.expect("result", "input shape", xs, getResult().getType()))) {
    return failure();
  }
  if (!(getEpsilon().convertToFloat() > 0.0f)) {
    return emitOpError() << "expected epsilon > 0, got "
                         << formatFloat(getEpsilon());
  }
  return verifySameFloatElementType(*this);
}

OpFoldResult ReluOp::fold(FoldAdaptor) {
  // relu is idempotent.
  if (auto inner = getInput().getDefiningOp<ReluOp>()) {
    return inner.getResult();
  }
  return {};
}

LogicalResult SplitHeadsOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("input", "[batch, seq, d_model]", 3, getInput())) ||
      failed(c.expectRank("result", "[batch, heads, seq, head_dim]", 4,
                          getResult().getType()))) {
    return failure();
  }
  ArrayRef<int64_t> in = shapeOf(getInput());
  ArrayRef<int64_t> out = shapeOf(getResult().getType());
  if (failed(c.expect("result", "[batch, heads, seq, head_dim]",
                      {in[0], kAny, in[1], kAny}, getResult().getType()))) {
    return failure();
  }
  if (!ShapedType::isDynamic(in[2]) && !ShapedType::isDynamic(out[1]) &&
      !ShapedType::isDynamic(out[3]) && out[1] * out[3] != in[2]) {
    return emitOpError() << "expected heads * head_dim = d_model = " << in[2]
                         << ", got " << out[1] << " * " << out[3] << " = "
                         << out[1] * out[3];
  }
  return verifySameFloatElementType(*this);
}

OpFoldResult SplitHeadsOp::fold(FoldAdaptor) {
  auto merge = getInput().getDefiningOp<MergeHeadsOp>();
  if (merge && merge.getInput().getType() == getType()) {
    return merge.getInput();
  }
  return {};
}

LogicalResult MergeHeadsOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("input", "[batch, heads, seq, head_dim]", 4,
                          getInput())) ||
      failed(c.expectRank("result", "[batch, seq, d_model]", 3,
                          getResult().getType()))) {
    return failure();
  }
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t dModel = ShapedType::isDynamic(in[1]) || ShapedType::isDynamic(in[3])
                       ? kAny
                       : in[1] * in[3];
  if (failed(c.expect("result", "[batch, seq, heads * head_dim]",
                      {in[0], in[2], dModel}, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

OpFoldResult MergeHeadsOp::fold(FoldAdaptor) {
  auto split = getInput().getDefiningOp<SplitHeadsOp>();
  if (split && split.getInput().getType() == getType()) {
    return split.getInput();
  }
  return {};
}

LogicalResult CrossEntropyOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> ls = shapeOf(getLogits());
  if (ls.size() < 2) {
    return emitOpError() << "expected logits of rank >= 2 [..., vocab], got "
                         << formatDims(ls);
  }
  return c.expect("targets", "logits shape without vocab", ls.drop_back(),
                  getTargets());
}

//===----------------------------------------------------------------------===//
// Score ops
//===----------------------------------------------------------------------===//

LogicalResult DotScoresOp::verify() {
  ShapeChecker c(*this);
  Type resultType = getResult().getType();
  if (failed(c.expectRank("result", "[batch, heads, N, M]", 4, resultType))) {
    return failure();
  }
  ArrayRef<int64_t> rs = shapeOf(resultType);
  FailureOr<ScoreDims> dims =
      verifyScoreOperands(c, ScoreKind::Dot, {getQ(), getK()}, /*maxLen=*/0,
                          rs[2], rs[3], /*standalone=*/true);
  if (failed(dims) ||
      failed(c.expect("result", "[batch, heads, N, M]",
                      {dims->batch, dims->heads, rs[2], rs[3]}, resultType))) {
    return failure();
  }
  if (getScale() && !std::isfinite(getScale()->convertToFloat())) {
    return emitOpError("expected a finite scale");
  }
  return verifySameFloatElementType(*this);
}

double DotScoresOp::getEffectiveScale() {
  if (getScale()) {
    return getScale()->convertToDouble();
  }
  return 1.0 / std::sqrt(static_cast<double>(shapeOf(getQ())[3]));
}

LogicalResult DenseScoresOp::verify() {
  return verifySynthesizedScores(*this, ScoreKind::Dense,
                                 (*this)->getOperands(), getMaxLen(),
                                 /*batched=*/true);
}

LogicalResult RandomScoresOp::verify() {
  return verifySynthesizedScores(*this, ScoreKind::Random,
                                 (*this)->getOperands(), getMaxLen(),
                                 /*batched=*/false);
}

LogicalResult FactorizedRandomScoresOp::verify() {
  return verifySynthesizedScores(*this, ScoreKind::FactorizedRandom,
                                 (*this)->getOperands(), getMaxLen(),
                                 /*batched=*/false);
}

LogicalResult FactorizedDenseScoresOp::verify() {
  return verifySynthesizedScores(*this, ScoreKind::FactorizedDense,
                                 (*this)->getOperands(), getMaxLen(),
                                 /*batched=*/true);
}

LogicalResult MixtureScoresOp::verify() {
  ShapeChecker c(*this);
  if (getParts().empty()) {
    return emitOpError("expected at least one score part");
  }
  // Reference [heads, N, M] from the first part, batch from any batched part.
  int64_t batch = kAny;
  SmallVector<int64_t> hnm;
  for (auto [i, part] : llvm::enumerate(getParts())) {
    ArrayRef<int64_t> ps = shapeOf(part);
    if (ps.size() != 3 && ps.size() != 4) {
      return emitOpError() << "expected part #" << i
                           << " of rank 3 [heads, N, M] or 4 [batch, heads, N, "
                              "M], got "
                           << formatDims(ps);
    }
    if (hnm.empty()) {
      hnm.assign(ps.end() - 3, ps.end());
    }
    if (ps.size() == 4 && ShapedType::isDynamic(batch)) {
      batch = ps[0];
    }
  }
  bool batched = false;
  for (auto [i, part] : llvm::enumerate(getParts())) {
    std::string name = "part #" + std::to_string(i);
    if (shapeOf(part).size() == 4) {
      batched = true;
      if (failed(c.expect(name, "[batch, heads, N, M]",
                          {batch, hnm[0], hnm[1], hnm[2]}, part))) {
        return failure();
      }
    } else if (failed(c.expect(name, "[heads, N, M]", hnm, part))) {
      return failure();
    }
  }
  int64_t parts = getParts().size();
  if (failed(
          c.expect("logits", "[heads, parts]", {hnm[0], parts}, getLogits()))) {
    return failure();
  }
  Type resultType = getResult().getType();
  LogicalResult resultOk =
      batched ? c.expect("result", "[batch, heads, N, M]",
                         {batch, hnm[0], hnm[1], hnm[2]}, resultType)
              : c.expect("result", "[heads, N, M]", hnm, resultType);
  if (failed(resultOk)) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

OpFoldResult MixtureScoresOp::fold(FoldAdaptor) {
  // softmax over a single logit is 1: the mixture is its only part.
  if (getParts().size() == 1 && getParts()[0].getType() == getType()) {
    return getParts()[0];
  }
  return {};
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

namespace {
/// Checks values [batch, heads, M, d], the [batch, M] key mask and the
/// [batch, heads, N, d] result shared by attend and fused_attention; `heads`
/// and `keys` may be kAny when the scores did not fix them.
LogicalResult verifyAttentionIO(ShapeChecker &c, Value values, Value keyMask,
                                Type resultType, int64_t batch, int64_t heads,
                                int64_t queries, int64_t keys) {
  if (failed(c.expect("values", "[batch, heads, M, head_dim]",
                      {batch, heads, keys, kAny}, values))) {
    return failure();
  }
  ArrayRef<int64_t> vs = shapeOf(values);
  if (keyMask &&
      failed(c.expect("key_mask", "[batch, M]", {vs[0], vs[2]}, keyMask))) {
    return failure();
  }
  return c.expect("result", "[batch, heads, N, head_dim]",
                  {vs[0], vs[1], queries, vs[3]}, resultType);
}
} // namespace

LogicalResult AttendOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> ss = shapeOf(getScores());
  int64_t batch = kAny;
  if (ss.size() == 4) {
    batch = ss[0];
  } else if (ss.size() != 3) {
    return emitOpError() << "expected scores of rank 4 [batch, heads, N, M] or "
                            "3 [heads, N, M], got "
                         << formatDims(ss);
  }
  int64_t heads = ss[ss.size() - 3], queries = ss[ss.size() - 2],
          keys = ss.back();
  if (failed(verifyAttentionIO(c, getValues(), getKeyMask(),
                               getResult().getType(), batch, heads, queries,
                               keys))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult AttentionProbsOp::verify() {
  return verifySynthesizedScores(*this, ScoreKind::Random,
                                 (*this)->getOperands(), getMaxLen(),
                                 /*batched=*/false);
}

LogicalResult AttendProbsOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("probs", "[heads, N, M]", 3, getProbs()))) {
    return failure();
  }
  ArrayRef<int64_t> ps = shapeOf(getProbs());
  // Transposed, the probabilities map the N rows of `values` to M rows.
  int64_t rows = getTransposeProbs() ? ps[2] : ps[1];
  int64_t cols = getTransposeProbs() ? ps[1] : ps[2];
  if (failed(verifyAttentionIO(c, getValues(), Value(), getResult().getType(),
                               kAny, ps[0], rows, cols))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

namespace {
/// The operands of score part `index` of a fused attention or its gradient.
template <typename OpT> OperandRange partOperands(OpT op, unsigned index) {
  unsigned begin = 0;
  auto parts = op.getScoreParts().template getAsRange<ScorePartAttr>();
  for (auto [i, part] : llvm::enumerate(parts)) {
    if (i == index) {
      return op.getScoreOperands().slice(begin, part.getNumOperands());
    }
    begin += part.getNumOperands();
  }
  llvm_unreachable("score part index out of range");
}

/// The checks shared by synth.fused_attention and its gradient: score parts
/// and their operands, mixture logits, values, key mask and `resultType`
/// ([batch, heads, N, head_dim]).
template <typename OpT>
LogicalResult verifyFusedAttention(OpT op, Type resultType) {
  ShapeChecker c(op);
  auto emitOpError = [&](const Twine &message = {}) {
    return op.emitOpError(message);
  };
  auto parts =
      llvm::to_vector(op.getScoreParts().template getAsRange<ScorePartAttr>());
  if (parts.empty()) {
    return emitOpError("expected at least one score part");
  }
  unsigned needed = 0;
  for (ScorePartAttr part : parts) {
    needed += part.getNumOperands();
  }
  if (needed != op.getScoreOperands().size()) {
    return emitOpError() << "score parts take " << needed
                         << " operands in all, got "
                         << op.getScoreOperands().size();
  }
  if (parts.size() > 1 && !op.getMixtureLogits()) {
    return emitOpError() << "a mixture of " << parts.size()
                         << " score parts needs mixture logits [heads, "
                         << parts.size() << "]";
  }
  if (parts.size() == 1 && op.getMixtureLogits()) {
    return emitOpError("a single score part takes no mixture logits");
  }
  if (failed(c.expectRank("values", "[batch, heads, M, head_dim]", 4,
                          op.getValues())) ||
      failed(c.expectRank("result", "[batch, heads, N, head_dim]", 4,
                          resultType))) {
    return failure();
  }
  ArrayRef<int64_t> vs = shapeOf(op.getValues());
  int64_t queries = shapeOf(resultType)[2];
  for (auto [i, part] : llvm::enumerate(parts)) {
    int64_t maxLen = part.getMaxLen() ? part.getMaxLen().getInt() : 0;
    FailureOr<ScoreDims> dims =
        verifyScoreOperands(c, part.getKind(), partOperands(op, i), maxLen,
                            queries, vs[2], /*standalone=*/false);
    if (failed(dims)) {
      return failure();
    }
    if (!dimMatches(vs[1], dims->heads) || !dimMatches(vs[0], dims->batch)) {
      return emitOpError() << "score part #" << i << " ("
                           << stringifyScoreKind(part.getKind())
                           << ") has batch x heads "
                           << formatDims({dims->batch, dims->heads})
                           << ", values have " << formatDims({vs[0], vs[1]});
    }
  }
  if (op.getMixtureLogits() &&
      failed(c.expect("mixture logits", "[heads, parts]",
                      {vs[1], static_cast<int64_t>(parts.size())},
                      op.getMixtureLogits()))) {
    return failure();
  }
  if (failed(verifyAttentionIO(c, op.getValues(), op.getKeyMask(), resultType,
                               vs[0], vs[1], queries, vs[2]))) {
    return failure();
  }
  return verifySameFloatElementType(op);
}
} // namespace

OperandRange FusedAttentionOp::getPartOperands(unsigned index) {
  return partOperands(*this, index);
}

LogicalResult FusedAttentionOp::verify() {
  return verifyFusedAttention(*this, getResult().getType());
}

//===----------------------------------------------------------------------===//
// FusedAttentionOp: TilingInterface
//
// The iteration space is [batch, heads, queries], all parallel: the reduction
// over keys is the online softmax inside the op. A tile slices every operand
// along the iteration dims it is indexed by and keeps the other dims whole.
//===----------------------------------------------------------------------===//

namespace {
/// For each dimension of an operand, the iteration dim it follows
/// (0 batch, 1 heads, 2 queries), or -1 when the operand keeps it whole.
using DimMap = SmallVector<int64_t, 4>;

/// The dim maps of one score part's operands, in operand order.
SmallVector<DimMap> scorePartDimMaps(ScoreKind kind) {
  const DimMap perHeadMatrix = {1, -1, -1}, perHeadVector = {1, -1};
  switch (kind) {
  case ScoreKind::Dot:
    return {{0, 1, 2, -1}, {0, 1, -1, -1}};
  case ScoreKind::Dense:
    return {
        {0, 2, -1}, perHeadMatrix, perHeadVector, perHeadMatrix, perHeadVector};
  case ScoreKind::Random:
    return {{1, 2, -1}};
  case ScoreKind::FactorizedRandom:
    return {{1, 2, -1}, perHeadMatrix};
  case ScoreKind::FactorizedDense:
    return {{0, 2, -1},    perHeadMatrix, perHeadVector, perHeadMatrix,
            perHeadVector, perHeadMatrix, perHeadVector};
  }
  llvm_unreachable("unknown score kind");
}
} // namespace

SmallVector<utils::IteratorType> FusedAttentionOp::getLoopIteratorTypes() {
  return SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel);
}

SmallVector<Range> FusedAttentionOp::getIterationDomain(OpBuilder &b) {
  Location loc = getLoc();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  SmallVector<Range> domain;
  for (int64_t dim = 0; dim < 3; ++dim) {
    OpFoldResult size = tensor::getMixedSize(b, loc, getResult(), dim);
    domain.push_back(Range{zero, size, one});
  }
  return domain;
}

FailureOr<TilingResult>
FusedAttentionOp::getTiledImplementation(OpBuilder &b,
                                         ArrayRef<OpFoldResult> offsets,
                                         ArrayRef<OpFoldResult> sizes) {
  Location loc = getLoc();
  TilingResult result;
  // Slices `value` along the iteration dims named by `map`.
  auto slice = [&](Value value, const DimMap &map) -> Value {
    SmallVector<OpFoldResult> sliceOffsets, sliceSizes;
    for (auto [dim, iterDim] : llvm::enumerate(map)) {
      if (iterDim < 0) {
        sliceOffsets.push_back(b.getIndexAttr(0));
        sliceSizes.push_back(tensor::getMixedSize(b, loc, value, dim));
      } else {
        sliceOffsets.push_back(offsets[iterDim]);
        sliceSizes.push_back(sizes[iterDim]);
      }
    }
    SmallVector<OpFoldResult> strides(map.size(), b.getIndexAttr(1));
    auto op = tensor::ExtractSliceOp::create(b, loc, value, sliceOffsets,
                                             sliceSizes, strides);
    result.generatedSlices.push_back(op);
    return op.getResult();
  };

  SmallVector<Value> scoreOperands;
  auto parts = getScoreParts().getAsRange<ScorePartAttr>();
  for (auto [i, part] : llvm::enumerate(parts)) {
    SmallVector<DimMap> maps = scorePartDimMaps(part.getKind());
    for (auto [operand, map] : llvm::zip_equal(getPartOperands(i), maps)) {
      scoreOperands.push_back(slice(operand, map));
    }
  }
  Value logits =
      getMixtureLogits() ? slice(getMixtureLogits(), {1, -1}) : Value();
  Value values = slice(getValues(), {0, 1, -1, -1});
  Value keyMask = getKeyMask() ? slice(getKeyMask(), {0, -1}) : Value();

  // The tile's first query sits at absolute position query_offset + offset.
  Value queryOffset = getValueOrCreateConstantIndexOp(b, loc, offsets[2]);
  if (getQueryOffset()) {
    queryOffset =
        b.createOrFold<arith::AddIOp>(loc, getQueryOffset(), queryOffset);
  }

  SmallVector<int64_t> tileShape;
  for (OpFoldResult size : sizes) {
    tileShape.push_back(getConstantIntValue(size).value_or(kAny));
  }
  tileShape.push_back(shapeOf(getResult().getType())[3]);
  auto tileType = RankedTensorType::get(tileShape, getType().getElementType());
  auto tiled = FusedAttentionOp::create(b, loc, tileType, getScoreParts(),
                                        scoreOperands, logits, values, keyMask,
                                        queryOffset, getCausalAttr());
  result.tiledOps.push_back(tiled);
  result.tiledValues.push_back(tiled.getResult());
  return result;
}

LogicalResult FusedAttentionOp::getResultTilePosition(
    OpBuilder &b, unsigned resultNumber, ArrayRef<OpFoldResult> offsets,
    ArrayRef<OpFoldResult> sizes, SmallVector<OpFoldResult> &resultOffsets,
    SmallVector<OpFoldResult> &resultSizes) {
  resultOffsets.assign(offsets.begin(), offsets.end());
  resultOffsets.push_back(b.getIndexAttr(0));
  resultSizes.assign(sizes.begin(), sizes.end());
  resultSizes.push_back(tensor::getMixedSize(b, getLoc(), getResult(), 3));
  return success();
}

FailureOr<TilingResult>
FusedAttentionOp::generateResultTileValue(OpBuilder &b, unsigned resultNumber,
                                          ArrayRef<OpFoldResult> offsets,
                                          ArrayRef<OpFoldResult> sizes) {
  // A result tile must span the whole head dimension: the op cannot compute
  // part of a row of softmax(S) V.
  std::optional<int64_t> headDimOffset = getConstantIntValue(offsets[3]);
  std::optional<int64_t> headDimSize = getConstantIntValue(sizes[3]);
  if (!headDimOffset || *headDimOffset != 0 || !headDimSize ||
      *headDimSize != shapeOf(getResult().getType())[3]) {
    return failure();
  }
  return getTiledImplementation(b, offsets.take_front(3), sizes.take_front(3));
}

//===----------------------------------------------------------------------===//
// Decoding with a cache
//===----------------------------------------------------------------------===//

LogicalResult SliceRowsOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("input", "[heads, L, c]", 3, getInput())) ||
      failed(
          c.expectRank("result", "[heads, n, c]", 3, getResult().getType()))) {
    return failure();
  }
  ArrayRef<int64_t> in = shapeOf(getInput());
  ArrayRef<int64_t> out = shapeOf(getResult().getType());
  if (failed(c.expect("result", "[heads, n, c]", {in[0], kAny, in[2]},
                      getResult().getType())) ||
      failed(c.expectAtMost("row count n", out[1], "rows L", in[1]))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult CacheUpdateOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("cache", "[batch, heads, L, d]", 4, getCache()))) {
    return failure();
  }
  ArrayRef<int64_t> cache = shapeOf(getCache());
  if (failed(c.expect("update", "[batch, heads, n, d]",
                      {cache[0], cache[1], kAny, cache[3]}, getUpdate())) ||
      failed(c.expectAtMost("row count n", shapeOf(getUpdate())[2],
                            "cache length L", cache[2])) ||
      failed(c.expect("result", "cache shape", cache, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

//===----------------------------------------------------------------------===//
// Training
//===----------------------------------------------------------------------===//

LogicalResult AdamWOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> ps = shapeOf(getParam());
  if (failed(c.expect("grad", "param shape", ps, getGrad())) ||
      failed(c.expect("m", "param shape", ps, getM())) ||
      failed(c.expect("v", "param shape", ps, getV())) ||
      failed(
          c.expect("new_param", "param shape", ps, getNewParam().getType())) ||
      failed(c.expect("new_m", "param shape", ps, getNewM().getType())) ||
      failed(c.expect("new_v", "param shape", ps, getNewV().getType()))) {
    return failure();
  }
  if (getGrad().getType() != getParam().getType() ||
      getNewParam().getType() != getParam().getType()) {
    return emitOpError() << "expected grad and new_param of the parameter's "
                            "type "
                         << getParam().getType();
  }
  auto inUnitInterval = [](APFloat value) {
    float f = value.convertToFloat();
    return f >= 0.0f && f < 1.0f;
  };
  if (!inUnitInterval(getBeta1()) || !inUnitInterval(getBeta2())) {
    return emitOpError() << "expected betas in [0, 1), got beta1 = "
                         << formatFloat(getBeta1())
                         << ", beta2 = " << formatFloat(getBeta2());
  }
  if (!(getEpsilon().convertToFloat() > 0.0f)) {
    return emitOpError() << "expected epsilon > 0, got "
                         << formatFloat(getEpsilon());
  }
  if (!(getWeightDecay().convertToFloat() >= 0.0f)) {
    return emitOpError() << "expected weight_decay >= 0, got "
                         << formatFloat(getWeightDecay());
  }
  if (!(getMaxGradNorm().convertToFloat() >= 0.0f)) {
    return emitOpError() << "expected max_grad_norm >= 0, got "
                         << formatFloat(getMaxGradNorm());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Gradient ops
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingGradOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> ids = shapeOf(getIds());
  if (failed(c.expectRank("result", "[vocab, d_model]", 2,
                          getResult().getType()))) {
    return failure();
  }
  SmallVector<int64_t> expected(ids.begin(), ids.end());
  expected.push_back(shapeOf(getResult().getType())[1]);
  if (failed(
          c.expect("d_result", "[...ids, d_model]", expected, getDResult()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult LinearWeightGradOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> xs = shapeOf(getInput());
  ArrayRef<int64_t> ds = shapeOf(getDResult());
  if (xs.empty()) {
    return emitOpError("expected an input of rank >= 1");
  }
  SmallVector<int64_t> expected(xs.begin(), xs.end());
  expected.back() = kAny;
  if (failed(c.expect("d_result", "[..., out]", expected, getDResult()))) {
    return failure();
  }
  int64_t in = xs.back(), out = ds.back();
  if (getTransposeWeight()) {
    return c.expect("result", "[out, in]", {out, in}, getResult().getType());
  }
  return c.expect("result", "[in, out]", {in, out}, getResult().getType());
}

LogicalResult SumRowsOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (xs.empty()) {
    return emitOpError("expected an input of rank >= 1");
  }
  return c.expect("result", "[last dim]", {xs.back()}, getResult().getType());
}

LogicalResult LayerNormGradOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (xs.empty()) {
    return emitOpError("expected an input of rank >= 1");
  }
  if (failed(c.expect("gamma", "[d]", {xs.back()}, getGamma())) ||
      failed(c.expect("d_result", "input shape", xs, getDResult())) ||
      failed(c.expect("result", "input shape", xs, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult LayerNormGammaGradOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> xs = shapeOf(getInput());
  if (xs.empty()) {
    return emitOpError("expected an input of rank >= 1");
  }
  if (failed(c.expect("d_result", "input shape", xs, getDResult())) ||
      failed(c.expect("result", "[d]", {xs.back()}, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult PositionsGradOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("d_result", "[batch, N, d]", 3, getDResult())) ||
      failed(c.expectRank("result", "[L, d]", 2, getResult().getType()))) {
    return failure();
  }
  ArrayRef<int64_t> ds = shapeOf(getDResult());
  ArrayRef<int64_t> rs = shapeOf(getResult().getType());
  if (failed(
          c.expect("result", "[L, d]", {kAny, ds[2]}, getResult().getType())) ||
      failed(c.expectAtMost("N", ds[1], "L", rs[0]))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult MeanPoolGradOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("d_result", "[batch, d]", 2, getDResult())) ||
      failed(c.expectRank("mask", "[batch, N]", 2, getMask()))) {
    return failure();
  }
  ArrayRef<int64_t> ds = shapeOf(getDResult());
  ArrayRef<int64_t> ms = shapeOf(getMask());
  if (failed(c.expect("mask", "[batch, N]", {ds[0], kAny}, getMask())) ||
      failed(c.expect("result", "[batch, N, d]", {ds[0], ms[1], ds[1]},
                      getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

LogicalResult CrossEntropyGradOp::verify() {
  ShapeChecker c(*this);
  ArrayRef<int64_t> ls = shapeOf(getLogits());
  if (ls.empty()) {
    return emitOpError("expected logits of rank >= 1");
  }
  if (failed(c.expect("targets", "[...]", ls.drop_back(), getTargets())) ||
      failed(c.expect("result", "logits shape", ls, getResult().getType()))) {
    return failure();
  }
  return verifySameFloatElementType(*this);
}

OperandRange AttentionStatsOp::getPartOperands(unsigned index) {
  return partOperands(*this, index);
}

LogicalResult AttentionStatsOp::verify() {
  ShapeChecker c(*this);
  if (failed(c.expectRank("result", "[batch, heads, N]", 3,
                          getResult().getType())) ||
      failed(c.expectRank("values", "[batch, heads, M, head_dim]", 4,
                          getValues()))) {
    return failure();
  }
  // Checked as the fused attention whose statistics these are.
  ArrayRef<int64_t> rs = shapeOf(getResult().getType());
  auto attention =
      RankedTensorType::get({rs[0], rs[1], rs[2], shapeOf(getValues())[3]},
                            getElementTypeOrSelf(getValues().getType()));
  return verifyFusedAttention(*this, attention);
}

OperandRange FusedAttentionGradOp::getPartOperands(unsigned index) {
  return partOperands(*this, index);
}

LogicalResult FusedAttentionGradOp::verify() {
  ShapeChecker c(*this);
  if (failed(verifyFusedAttention(*this, getOutput().getType())) ||
      failed(c.expect("d_output", "output shape", shapeOf(getOutput()),
                      getDOutput()))) {
    return failure();
  }
  ArrayRef<int64_t> os = shapeOf(getOutput());
  if (failed(c.expect("row_stats", "[batch, heads, N]", {os[0], os[1], os[2]},
                      getRowStats()))) {
    return failure();
  }
  // `wrt` may name a score operand, the logits or the values.
  int64_t differentiable =
      getScoreOperands().size() + (getMixtureLogits() ? 1 : 0) + 1;
  int64_t wrt = static_cast<int64_t>(getWrt());
  if (wrt < 0 || wrt >= differentiable) {
    return emitOpError() << "wrt = " << getWrt()
                         << " is not a score operand, the mixture logits or "
                            "the values (expected 0 <= wrt < "
                         << differentiable << ")";
  }
  if (getResult().getType() != getWrtOperand().getType()) {
    return emitOpError() << "expected a result of the type of operand #"
                         << getWrt() << ", " << getWrtOperand().getType()
                         << ", got " << getResult().getType();
  }
  return success();
}

LogicalResult LearningRateOp::verify() {
  if (!(getPeak().convertToFloat() > 0.0f)) {
    return emitOpError() << "expected peak > 0, got " << formatFloat(getPeak());
  }
  int64_t warmup = static_cast<int64_t>(getWarmupSteps());
  if (warmup < 0) {
    return emitOpError() << "expected warmup_steps >= 0, got " << warmup;
  }
  float final = getFinalRatio().convertToFloat();
  if (!(final >= 0.0f && final <= 1.0f)) {
    return emitOpError() << "expected final_ratio in [0, 1], got "
                         << formatFloat(getFinalRatio());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

LogicalResult KernelOp::verify() {
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size()) {
    return emitOpError() << "expected " << getInputs().size()
                         << " region arguments (one per input), got "
                         << body.getNumArguments();
  }
  for (auto [i, input, arg] :
       llvm::enumerate(getInputs(), body.getArguments())) {
    if (input.getType() != arg.getType()) {
      return emitOpError() << "expected region argument #" << i << " of type "
                           << input.getType() << ", got " << arg.getType();
    }
  }
  auto yield = body.empty() ? YieldOp() : dyn_cast<YieldOp>(body.back());
  if (!yield) {
    return emitOpError("expected the region to end with synth.yield");
  }
  if (!llvm::equal(yield.getValues().getTypes(), getResultTypes())) {
    auto format = [](TypeRange types) {
      std::string text;
      llvm::raw_string_ostream os(text);
      llvm::interleaveComma(types, os);
      return text;
    };
    return emitOpError()
           << "expected synth.yield of the kernel's result types ("
           << format(getResultTypes()) << "), got ("
           << format(yield.getValues().getTypes()) << ")";
  }
  if (getKernelName().empty()) {
    return emitOpError("expected a non-empty kernel name");
  }
  return success();
}

void KernelOp::getAsmBlockArgumentNames(Region &region,
                                        OpAsmSetValueNameFn setNameFn) {
  for (BlockArgument arg : region.getArguments()) {
    setNameFn(arg, "in");
  }
}

#define GET_OP_CLASSES
#include "dialect/SynthOps.cpp.inc"
