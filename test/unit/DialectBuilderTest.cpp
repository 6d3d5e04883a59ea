//===- DialectBuilderTest.cpp - build synth ops from C++ ------------------===//
//
// The C++ builder API of the synth dialect: every op is created with its ODS
// builder, verified, printed, parsed back and printed again to the same text.
// Verifier failures are checked to carry the documented message.
//
//===----------------------------------------------------------------------===//

#include "dialect/SynthDialect.h"
#include "dialect/SynthOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include "gtest/gtest.h"

#include <string>

using namespace mlir;
using namespace mlir::synth;

namespace {

std::string printOp(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os);
  return text;
}

/// Builds one function per test whose arguments have the requested types, so
/// that ops can be created on them, then checks the round trip of the module.
class SynthBuilderTest : public ::testing::Test {
protected:
  SynthBuilderTest() : builder(&context) {
    context.loadDialect<SynthDialect, func::FuncDialect, arith::ArithDialect,
                        tensor::TensorDialect>();
    module = ModuleOp::create(builder.getUnknownLoc());
  }

  /// A tensor type of f32 (or `element`) with the given shape.
  RankedTensorType t(ArrayRef<int64_t> shape, Type element = nullptr) {
    return RankedTensorType::get(shape,
                                 element ? element : builder.getF32Type());
  }

  /// Creates `func.func @name(args...)` and positions the builder in its body.
  ValueRange makeFunc(StringRef name, ArrayRef<Type> argTypes) {
    builder.setInsertionPointToEnd(module->getBody());
    auto func = func::FuncOp::create(builder, builder.getUnknownLoc(), name,
                                     builder.getFunctionType(argTypes, {}));
    Block *body = func.addEntryBlock();
    builder.setInsertionPointToEnd(body);
    func::ReturnOp::create(builder, builder.getUnknownLoc());
    builder.setInsertionPointToStart(body);
    return body->getArguments();
  }

  /// Verifies the module, prints it, parses the text back and prints again:
  /// both printings must agree.
  void expectRoundTrip() {
    ASSERT_TRUE(succeeded(verify(*module))) << printOp(*module);
    std::string first = printOp(*module);
    OwningOpRef<ModuleOp> parsed =
        parseSourceString<ModuleOp>(first, ParserConfig(&context));
    ASSERT_TRUE(parsed) << "failed to parse:\n" << first;
    EXPECT_EQ(first, printOp(*parsed));
  }

  /// Verifies `op` expecting failure, and returns the diagnostic text.
  std::string verifyFailure(Operation *op) {
    std::string message;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      message += diag.str();
      return success();
    });
    EXPECT_TRUE(failed(verify(op)));
    return message;
  }

  Location loc() { return builder.getUnknownLoc(); }

  MLIRContext context;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
};

TEST_F(SynthBuilderTest, ModelOps) {
  ValueRange args =
      makeFunc("model", {t({256, 64}), t({2, 16}, builder.getI32Type()),
                         t({64, 256}), t({256}), t({64}), t({256, 256})});
  Value table = args[0], ids = args[1], w = args[2], b = args[3], g = args[4],
        wo = args[5];
  auto emb = EmbeddingOp::create(builder, loc(), t({2, 16, 64}), table, ids);
  auto norm = LayerNormOp::create(builder, loc(), t({2, 16, 64}), emb, g, g,
                                  builder.getF32FloatAttr(1e-6f));
  auto lin = LinearOp::create(builder, loc(), t({2, 16, 256}), norm, w, b);
  auto relu = ReluOp::create(builder, loc(), lin.getResult());
  auto gelu = GeluOp::create(builder, loc(), t({2, 16, 256}), relu,
                             GeluApproximation::Tanh);
  auto add = AddOp::create(builder, loc(), gelu.getResult(), lin.getResult());
  auto logits =
      LinearOp::create(builder, loc(), t({2, 16, 256}), add, wo, Value());
  auto loss = CrossEntropyOp::create(builder, loc(), t({}), logits, ids,
                                     builder.getI64IntegerAttr(-1));
  EXPECT_EQ(loss.getIgnoreIndex(), -1);
  EXPECT_FALSE(logits.getBias());
  EXPECT_EQ(norm.getEpsilon().convertToFloat(), 1e-6f);
  expectRoundTrip();
}

TEST_F(SynthBuilderTest, HeadsAndAttention) {
  ValueRange args = makeFunc("attn", {t({2, 16, 64}), t({2, 16, 64}),
                                      t({2, 16}, builder.getI1Type())});
  auto q = SplitHeadsOp::create(builder, loc(), t({2, 4, 16, 16}), args[0]);
  auto v = SplitHeadsOp::create(builder, loc(), t({2, 4, 16, 16}), args[1]);
  auto s = DotScoresOp::create(builder, loc(), t({2, 4, 16, 16}), q, q,
                               builder.getF32FloatAttr(0.25f));
  EXPECT_DOUBLE_EQ(s.getEffectiveScale(), 0.25);
  auto sDefault =
      DotScoresOp::create(builder, loc(), t({2, 4, 16, 16}), q, q, FloatAttr());
  // 1 / sqrt(head_dim = 16).
  EXPECT_DOUBLE_EQ(sDefault.getEffectiveScale(), 0.25);
  auto o = AttendOp::create(builder, loc(), t({2, 4, 16, 16}), s, v, args[2],
                            /*query_offset=*/Value(), /*causal=*/true);
  EXPECT_TRUE(o.getCausal());
  MergeHeadsOp::create(builder, loc(), t({2, 16, 64}), o);
  expectRoundTrip();
}

TEST_F(SynthBuilderTest, SynthesizedScores) {
  ValueRange args = makeFunc(
      "scores", {t({2, 16, 64}), t({4, 64, 16}), t({4, 16}), t({4, 16, 32}),
                 t({4, 32}), t({4, 32, 32}), t({4, 32, 8}), t({4, 16, 8}),
                 t({4, 8}), t({4, 16, 4}), t({4, 4}), t({4, 3})});
  Value x = args[0], w1 = args[1], b1 = args[2], w2 = args[3], b2 = args[4],
        r = args[5], r1 = args[6], wa = args[7], ba = args[8], wb = args[9],
        bb = args[10], mix = args[11];
  auto dense = DenseScoresOp::create(builder, loc(), t({2, 4, 16, 16}), x, w1,
                                     b1, w2, b2, /*max_len=*/32);
  auto random = RandomScoresOp::create(builder, loc(), t({4, 16, 16}), r,
                                       /*max_len=*/32, /*trainable=*/false);
  EXPECT_FALSE(random.getTrainable());
  auto factRandom = FactorizedRandomScoresOp::create(
      builder, loc(), t({4, 16, 16}), r1, r1, /*max_len=*/32);
  auto factDense = FactorizedDenseScoresOp::create(
      builder, loc(), t({2, 4, 16, 16}), x, w1, b1, wa, ba, wb, bb,
      /*max_len=*/32);
  auto mixture = MixtureScoresOp::create(
      builder, loc(), t({2, 4, 16, 16}),
      ValueRange{dense.getResult(), random.getResult(), factRandom.getResult()},
      mix);
  EXPECT_EQ(mixture.getParts().size(), 3u);
  (void)factDense;
  expectRoundTrip();
}

TEST_F(SynthBuilderTest, FusedAttention) {
  ValueRange args =
      makeFunc("fused", {t({4, 32, 32}), t({2, 4, 16, 16}), t({4, 2}),
                         t({2, 4, 16, 16}), builder.getIndexType()});
  Value r = args[0], q = args[1], mix = args[2], v = args[3], off = args[4];
  auto parts = builder.getArrayAttr(
      {ScorePartAttr::get(&context, ScoreKind::Random, FloatAttr(),
                          builder.getI64IntegerAttr(32)),
       ScorePartAttr::get(&context, ScoreKind::Dot,
                          builder.getF32FloatAttr(0.25f), IntegerAttr())});
  auto fused = FusedAttentionOp::create(builder, loc(), t({2, 4, 16, 16}),
                                        parts, ValueRange{r, q, q}, mix, v,
                                        /*key_mask=*/Value(), off,
                                        /*causal=*/true);
  EXPECT_EQ(fused.getPartOperands(0).size(), 1u);
  EXPECT_EQ(fused.getPartOperands(1).size(), 2u);
  EXPECT_EQ(fused.getPartOperands(1)[0], q);

  // The op is tileable over [batch, heads, queries], all parallel.
  auto tileable = cast<TilingInterface>(fused.getOperation());
  EXPECT_EQ(tileable.getLoopIteratorTypes().size(), 3u);
  expectRoundTrip();
}

TEST_F(SynthBuilderTest, AdamWAndKernel) {
  ValueRange args =
      makeFunc("train", {t({8, 8}, builder.getBF16Type()), t({8, 8}), t({}),
                         RankedTensorType::get({}, builder.getI64Type())});
  Value p = args[0], m = args[1], lr = args[2], step = args[3];
  auto adamw = AdamWOp::create(
      builder, loc(), TypeRange{p.getType(), m.getType(), m.getType()}, p, p, m,
      m, lr, step, /*grad_sq_norm=*/Value(), builder.getF32FloatAttr(0.9f),
      builder.getF32FloatAttr(0.95f), builder.getF32FloatAttr(1e-8f),
      builder.getF32FloatAttr(0.1f), builder.getF32FloatAttr(0.0f));
  EXPECT_EQ(adamw.getBeta2().convertToFloat(), 0.95f);

  auto schedule = ScheduleAttr::get(
      &context,
      builder.getDictionaryAttr(builder.getNamedAttr(
          "avx512", builder.getDictionaryAttr(builder.getNamedAttr(
                        "vector_width", builder.getI64IntegerAttr(16))))));
  auto kernel = KernelOp::create(builder, loc(), TypeRange{m.getType()},
                                 "relu_0", ValueRange{m}, schedule);
  Block *body =
      builder.createBlock(&kernel.getBody(), {}, {m.getType()}, {loc()});
  auto relu = ReluOp::create(builder, loc(), body->getArgument(0));
  YieldOp::create(builder, loc(), ValueRange{relu.getResult()});
  EXPECT_EQ(cast<IntegerAttr>(kernel.getScheduleAttr().getTarget("avx512").get(
                                  "vector_width"))
                .getInt(),
            16);
  expectRoundTrip();
}

TEST_F(SynthBuilderTest, VerifierNamesOperandAndShapes) {
  ValueRange args = makeFunc("bad", {t({2, 16, 64}), t({4, 64, 64}), t({4, 64}),
                                     t({4, 64, 128}), t({4, 256})});
  auto dense =
      DenseScoresOp::create(builder, loc(), t({2, 4, 16, 16}), args[0], args[1],
                            args[2], args[3], args[4], /*max_len=*/256);
  std::string message = verifyFailure(dense);
  EXPECT_NE(message.find("expected W2 of shape [heads, k, L] = [4, 64, 256], "
                         "got [4, 64, 128]"),
            std::string::npos)
      << message;
}

TEST_F(SynthBuilderTest, ScorePartAttrRejectsBadCombinations) {
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  auto bad =
      ScorePartAttr::getChecked([&] { return emitError(loc()); }, &context,
                                ScoreKind::Dense, FloatAttr(), IntegerAttr());
  EXPECT_FALSE(bad);
  EXPECT_EQ(message, "score part 'dense' needs max_len (the model's L)");
  auto good = ScorePartAttr::get(&context, ScoreKind::FactorizedDense,
                                 FloatAttr(), builder.getI64IntegerAttr(64));
  EXPECT_EQ(good.getNumOperands(), 7u);
}

} // namespace
