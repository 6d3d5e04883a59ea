//===- ModelBuilder.cpp - model description -> synth IR -------------------===//
//
// One builder class walks the model top-down (embedding, stacks of layers,
// head, loss) and emits synth ops; every op gets a name location such as
// "layers.1.attn.scores" so IR dumps and later diagnostics point back into
// the model. Parameters are function arguments in parameterTable() order,
// each tagged with `synth.param` (its name) and `synth.trainable`.
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelBuilder.h"

#include "dialect/SynthDialect.h"
#include "dialect/SynthOps.h"
#include "frontend/Parameters.h"

#include "absl/strings/str_cat.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

#include <cmath>
#include <map>

namespace synth {

using namespace mlir;
using mlir::synth::AttendOp;
using mlir::synth::ScoreKind;

void registerModelDialects(MLIRContext &context) {
  context.loadDialect<mlir::synth::SynthDialect, func::FuncDialect,
                      arith::ArithDialect, tensor::TensorDialect>();
}

namespace {

/// The function being built: which inputs it takes and whether it ends with
/// the loss.
enum class Entry { Forward, Loss };

class ModelIRBuilder {
public:
  ModelIRBuilder(MLIRContext &context, const ModelConfig &config, int64_t batch,
                 int64_t srcLen, int64_t tgtLen)
      : b(&context), c(config), table(parameterTable(config)), B(batch),
        S(srcLen), T(tgtLen) {
    f32 = b.getF32Type();
    i32 = b.getI32Type();
    i1 = b.getI1Type();
  }

  void build(ModuleOp module) {
    buildFunction(module, Entry::Forward);
    buildFunction(module, Entry::Loss);
    if (c.task == Task::LM) {
      buildDecode(module);
    }
  }

private:
  //===--------------------------------------------------------------------===//
  // Helpers
  //===--------------------------------------------------------------------===//

  RankedTensorType t(ArrayRef<int64_t> shape, Type element = nullptr) {
    return RankedTensorType::get(shape, element ? element : f32);
  }
  Location loc(const std::string &name) {
    return NameLoc::get(b.getStringAttr(name));
  }
  Value param(const std::string &name) {
    auto it = params.find(name);
    assert(it != params.end() && "parameter missing from the table");
    return it->second;
  }
  int64_t dim(Value v, unsigned i) {
    return cast<RankedTensorType>(v.getType()).getDimSize(i);
  }

  Value layerNorm(Value x, const std::string &prefix) {
    return mlir::synth::LayerNormOp::create(
        b, loc(prefix), x.getType(), x, param(prefix + ".weight"),
        param(prefix + ".bias"),
        b.getF32FloatAttr(static_cast<float>(c.layerNormEpsilon)));
  }

  /// x [..., in] W [in, out] (+ bias).
  Value linear(Value x, const std::string &weight, const std::string &bias,
               const std::string &where) {
    Value w = param(weight);
    auto shape =
        llvm::to_vector(cast<RankedTensorType>(x.getType()).getShape());
    shape.back() = dim(w, 1);
    return mlir::synth::LinearOp::create(b, loc(where), t(shape), x, w,
                                         bias.empty() ? Value() : param(bias),
                                         /*transpose_weight=*/false);
  }

  Value splitHeads(Value x, const std::string &where) {
    return mlir::synth::SplitHeadsOp::create(
        b, loc(where), t({dim(x, 0), c.heads, dim(x, 1), c.headDim()}), x);
  }
  Value mergeHeads(Value x, const std::string &where) {
    return mlir::synth::MergeHeadsOp::create(
        b, loc(where), t({dim(x, 0), dim(x, 2), c.dModel}), x);
  }

  //===--------------------------------------------------------------------===//
  // Attention
  //===--------------------------------------------------------------------===//

  /// Scores of one (non-mixture) score function from h [B, N, D]:
  /// [B, H, N, N], or [H, N, N] for the input-independent kinds.
  Value scores(const AttentionSpec &spec, Value h, const std::string &attn) {
    int64_t batch = dim(h, 0), n = dim(h, 1), H = c.heads, L = c.maxLen;
    Location where =
        loc(absl::StrCat(attn, ".", attentionKindName(spec.kind), ".scores"));
    switch (spec.kind) {
    case AttentionKind::Dot: {
      std::string p = attn + ".dot";
      Value q = splitHeads(linear(h, p + ".q.weight", "", p + ".q"), p + ".q");
      Value k = splitHeads(linear(h, p + ".k.weight", "", p + ".k"), p + ".k");
      return mlir::synth::DotScoresOp::create(
          b, where, t({batch, H, n, n}), q, k,
          b.getF32FloatAttr(
              static_cast<float>(1.0 / std::sqrt(double(c.headDim())))));
    }
    case AttentionKind::Dense: {
      std::string p = attn + ".dense";
      return mlir::synth::DenseScoresOp::create(
          b, where, t({batch, H, n, n}), h, param(p + ".w1"), param(p + ".b1"),
          param(p + ".w2"), param(p + ".b2"), L);
    }
    case AttentionKind::Random:
      return mlir::synth::RandomScoresOp::create(
          b, where, t({H, n, n}), param(attn + ".random.R"), L, spec.trainable);
    case AttentionKind::FactorizedRandom: {
      std::string p = attn + ".factorized_random";
      return mlir::synth::FactorizedRandomScoresOp::create(
          b, where, t({H, n, n}), param(p + ".R1"), param(p + ".R2"), L);
    }
    case AttentionKind::FactorizedDense: {
      std::string p = attn + ".factorized_dense";
      return mlir::synth::FactorizedDenseScoresOp::create(
          b, where, t({batch, H, n, n}), h, param(p + ".w1"), param(p + ".b1"),
          param(p + ".wa"), param(p + ".ba"), param(p + ".wb"),
          param(p + ".bb"), L);
    }
    case AttentionKind::Mixture: {
      SmallVector<Value> parts;
      bool batched = false;
      for (const AttentionSpec &part : spec.parts) {
        parts.push_back(scores(part, h, attn));
        batched |=
            cast<RankedTensorType>(parts.back().getType()).getRank() == 4;
      }
      Type type = batched ? t({batch, H, n, n}) : t({H, n, n});
      return mlir::synth::MixtureScoresOp::create(
          b, loc(attn + ".mixture.scores"), type, parts,
          param(attn + ".mixture.logits"));
    }
    }
    llvm_unreachable("unknown attention kind");
  }

  /// Self-attention of one layer on h [B, N, D].
  Value selfAttention(Value h, const AttentionSpec &spec,
                      const std::string &layer, bool causal, Value keyMask) {
    std::string attn = layer + "attn";
    Value v =
        splitHeads(linear(h, attn + ".v.weight", "", attn + ".v"), attn + ".v");
    Value s = scores(spec, h, attn);
    Value o = AttendOp::create(b, loc(attn + ".attend"), v.getType(), s, v,
                               keyMask, /*query_offset=*/Value(), causal);
    return linear(mergeHeads(o, attn + ".merge"), attn + ".o.weight", "",
                  attn + ".o");
  }

  /// Dot-product cross-attention of decoder states h [B, T, D] over the
  /// encoder output enc [B, S, D] with the source padding mask.
  Value crossAttention(Value h, Value enc, Value srcMask,
                       const std::string &layer) {
    std::string p = layer + "cross_attn";
    Value q = splitHeads(linear(h, p + ".q.weight", "", p + ".q"), p + ".q");
    Value k = splitHeads(linear(enc, p + ".k.weight", "", p + ".k"), p + ".k");
    Value v = splitHeads(linear(enc, p + ".v.weight", "", p + ".v"), p + ".v");
    Value s = mlir::synth::DotScoresOp::create(
        b, loc(p + ".scores"), t({dim(h, 0), c.heads, dim(h, 1), dim(enc, 1)}),
        q, k,
        b.getF32FloatAttr(
            static_cast<float>(1.0 / std::sqrt(double(c.headDim())))));
    Value o = AttendOp::create(b, loc(p + ".attend"), q.getType(), s, v,
                               srcMask, /*query_offset=*/Value(),
                               /*causal=*/false);
    return linear(mergeHeads(o, p + ".merge"), p + ".o.weight", "", p + ".o");
  }

  Value feedForward(Value h, const std::string &layer) {
    std::string p = layer + "ffn";
    Value hidden = linear(h, p + ".w1.weight", p + ".w1.bias", p + ".w1");
    if (c.activation == Activation::Relu) {
      hidden = mlir::synth::ReluOp::create(b, loc(p + ".act"), hidden);
    } else {
      hidden = mlir::synth::GeluOp::create(b, loc(p + ".act"), hidden.getType(),
                                           hidden,
                                           mlir::synth::GeluApproximation::Erf);
    }
    return linear(hidden, p + ".w2.weight", p + ".w2.bias", p + ".w2");
  }

  Value add(Value x, Value y, const std::string &where) {
    return mlir::synth::AddOp::create(b, loc(where), x, y);
  }

  /// One residual sublayer, pre- or post-norm.
  template <typename Fn>
  Value residual(Value x, const std::string &norm, const std::string &where,
                 Fn sublayer) {
    if (c.norm == NormPlacement::Pre) {
      return add(x, sublayer(layerNorm(x, norm)), where);
    }
    return layerNorm(add(x, sublayer(x), where), norm);
  }

  /// A stack of layers; `enc` and `srcMask` are set for the decoder of a
  /// seq2seq model (cross-attention).
  Value stack(Value x, const std::vector<AttentionSpec> &attention,
              const std::string &prefix, bool causal, Value keyMask,
              Value enc = {}, Value srcMask = {}) {
    for (size_t i = 0; i < attention.size(); ++i) {
      std::string layer = absl::StrCat(prefix, "layers.", i, ".");
      x = residual(
          x, layer + "attn_norm", layer + "attn.residual", [&](Value h) {
            return selfAttention(h, attention[i], layer, causal, keyMask);
          });
      if (enc) {
        x = residual(
            x, layer + "cross_norm", layer + "cross_attn.residual",
            [&](Value h) { return crossAttention(h, enc, srcMask, layer); });
      }
      x = residual(x, layer + "ffn_norm", layer + "ffn.residual",
                   [&](Value h) { return feedForward(h, layer); });
    }
    if (c.norm == NormPlacement::Pre) {
      x = layerNorm(x, prefix + "final_norm");
    }
    return x;
  }

  /// Token embedding plus learned positions, [B, n, D].
  Value embed(Value tokens, const std::string &where) {
    int64_t n = dim(tokens, 1);
    Value x = mlir::synth::EmbeddingOp::create(b, loc(where),
                                               t({dim(tokens, 0), n, c.dModel}),
                                               param("embed.weight"), tokens);
    return mlir::synth::AddPositionsOp::create(b, loc(where + ".positions"),
                                               x.getType(), x,
                                               param("pos.weight"), Value());
  }

  /// Logits of the language-model head, [B, n, V].
  Value lmHead(Value x) {
    if (c.tieEmbeddings) {
      return mlir::synth::LinearOp::create(
          b, loc("lm_head"), t({dim(x, 0), dim(x, 1), c.vocabSize}), x,
          param("embed.weight"), Value(), /*transpose_weight=*/true);
    }
    return linear(x, "lm_head.weight", "", "lm_head");
  }

  //===--------------------------------------------------------------------===//
  // Functions
  //===--------------------------------------------------------------------===//

  void buildFunction(ModuleOp module, Entry entry) {
    // Inputs first (named by synth.input), then parameters.
    SmallVector<std::pair<std::string, Type>> inputs;
    switch (c.task) {
    case Task::LM:
      inputs.push_back({"tokens", t({B, T}, i32)});
      if (entry == Entry::Loss) {
        inputs.push_back({"targets", t({B, T}, i32)});
      }
      break;
    case Task::Encoder:
      inputs.push_back({"tokens", t({B, S}, i32)});
      inputs.push_back({"mask", t({B, S}, i1)});
      if (entry == Entry::Loss) {
        inputs.push_back({"labels", t({B}, i32)});
      }
      break;
    case Task::Seq2Seq:
      inputs.push_back({"source", t({B, S}, i32)});
      inputs.push_back({"source_mask", t({B, S}, i1)});
      inputs.push_back({"target_in", t({B, T}, i32)});
      if (entry == Entry::Loss) {
        inputs.push_back({"target_out", t({B, T}, i32)});
      }
      break;
    }
    SmallVector<Type> argTypes;
    for (auto &[name, type] : inputs) {
      argTypes.push_back(type);
    }
    for (const ParamInfo &p : table) {
      argTypes.push_back(t(p.shape));
    }
    Type resultType;
    if (entry == Entry::Loss) {
      resultType = t({});
    } else if (c.task == Task::Encoder) {
      resultType = t({B, c.numClasses});
    } else {
      resultType = t({B, T, c.vocabSize});
    }

    b.setInsertionPointToEnd(module.getBody());
    std::string name = entry == Entry::Forward ? "forward" : "loss";
    auto func = func::FuncOp::create(b, loc(name), name,
                                     b.getFunctionType(argTypes, resultType));
    Block *body = func.addEntryBlock();
    b.setInsertionPointToStart(body);

    std::map<std::string, Value> in;
    for (auto [i, input] : llvm::enumerate(inputs)) {
      func.setArgAttr(i, "synth.input", b.getStringAttr(input.first));
      in[input.first] = body->getArgument(i);
    }
    bindParameters(func, body, inputs.size());

    Value logits, loss;
    switch (c.task) {
    case Task::LM: {
      Value x = stack(embed(in["tokens"], "embed"), c.decoderAttention, "",
                      /*causal=*/true, Value());
      logits = lmHead(x);
      if (entry == Entry::Loss) {
        loss = crossEntropy(logits, in["targets"]);
      }
      break;
    }
    case Task::Encoder: {
      Value mask = in["mask"];
      Value x = stack(embed(in["tokens"], "embed"), c.encoderAttention, "",
                      /*causal=*/false, mask);
      Value pooled = mlir::synth::MeanPoolOp::create(b, loc("pool"),
                                                     t({B, c.dModel}), x, mask);
      logits =
          linear(pooled, "classifier.weight", "classifier.bias", "classifier");
      if (entry == Entry::Loss) {
        loss = crossEntropy(logits, in["labels"]);
      }
      break;
    }
    case Task::Seq2Seq: {
      Value srcMask = in["source_mask"];
      Value enc =
          stack(embed(in["source"], "encoder.embed"), c.encoderAttention,
                "encoder.", /*causal=*/false, srcMask);
      Value x =
          stack(embed(in["target_in"], "decoder.embed"), c.decoderAttention,
                "decoder.", /*causal=*/true, Value(), enc, srcMask);
      logits = lmHead(x);
      if (entry == Entry::Loss) {
        loss = crossEntropy(logits, in["target_out"]);
      }
      break;
    }
    }
    func::ReturnOp::create(b, loc(name), entry == Entry::Loss ? loss : logits);
    func.setResultAttr(
        0, "synth.output",
        b.getStringAttr(entry == Entry::Loss ? "loss" : "logits"));
  }

  //===--------------------------------------------------------------------===//
  // Decoding with a cache (lm): one token at a time
  //===--------------------------------------------------------------------===//

  /// Whether a layer's attention needs cached keys (dot-product parts).
  static bool needsKeys(const AttentionSpec &spec) {
    if (spec.kind == AttentionKind::Dot) {
      return true;
    }
    return llvm::any_of(spec.parts, [](const AttentionSpec &part) {
      return part.kind == AttentionKind::Dot;
    });
  }

  /// Self-attention of the token at `position` over the cache; appends the
  /// updated caches to `newCaches`.
  Value decodeAttention(Value h, const AttentionSpec &spec,
                        const std::string &layer, Value position,
                        std::map<std::string, Value> &caches,
                        SmallVector<Value> &newCaches) {
    std::string attn = layer + "attn";
    std::string cacheName = "cache." + layer;
    int64_t batch = dim(h, 0), H = c.heads, L = c.maxLen;
    Value vNew =
        splitHeads(linear(h, attn + ".v.weight", "", attn + ".v"), attn + ".v");
    Value values = mlir::synth::CacheUpdateOp::create(
        b, loc(attn + ".v.cache"), caches[cacheName + "v"].getType(),
        caches[cacheName + "v"], vNew, position);
    SmallVector<Attribute> parts;
    SmallVector<Value> operands;
    auto addPart = [&](const AttentionSpec &part) {
      auto attr = [&](ScoreKind kind) {
        bool dot = kind == ScoreKind::Dot;
        return mlir::synth::ScorePartAttr::get(
            b.getContext(), kind,
            dot ? b.getF32FloatAttr(
                      static_cast<float>(1.0 / std::sqrt(double(c.headDim()))))
                : FloatAttr(),
            dot ? IntegerAttr() : b.getI64IntegerAttr(L));
      };
      auto rows = [&](const std::string &name) -> Value {
        Value full = param(name);
        auto type = cast<RankedTensorType>(full.getType());
        return mlir::synth::SliceRowsOp::create(
            b, loc(name + ".row"),
            t({type.getDimSize(0), 1, type.getDimSize(2)}), full, position);
      };
      switch (part.kind) {
      case AttentionKind::Dot: {
        std::string p = attn + ".dot";
        Value q =
            splitHeads(linear(h, p + ".q.weight", "", p + ".q"), p + ".q");
        Value kNew =
            splitHeads(linear(h, p + ".k.weight", "", p + ".k"), p + ".k");
        Value keys = mlir::synth::CacheUpdateOp::create(
            b, loc(attn + ".k.cache"), caches[cacheName + "k"].getType(),
            caches[cacheName + "k"], kNew, position);
        newCaches.push_back(keys);
        parts.push_back(attr(ScoreKind::Dot));
        operands.append({q, keys});
        break;
      }
      case AttentionKind::Dense: {
        std::string p = attn + ".dense";
        parts.push_back(attr(ScoreKind::Dense));
        operands.append({h, param(p + ".w1"), param(p + ".b1"),
                         param(p + ".w2"), param(p + ".b2")});
        break;
      }
      case AttentionKind::Random:
        parts.push_back(attr(ScoreKind::Random));
        operands.push_back(rows(attn + ".random.R"));
        break;
      case AttentionKind::FactorizedRandom: {
        std::string p = attn + ".factorized_random";
        parts.push_back(attr(ScoreKind::FactorizedRandom));
        operands.append({rows(p + ".R1"), param(p + ".R2")});
        break;
      }
      case AttentionKind::FactorizedDense: {
        std::string p = attn + ".factorized_dense";
        parts.push_back(attr(ScoreKind::FactorizedDense));
        operands.append({h, param(p + ".w1"), param(p + ".b1"),
                         param(p + ".wa"), param(p + ".ba"), param(p + ".wb"),
                         param(p + ".bb")});
        break;
      }
      case AttentionKind::Mixture:
        break;
      }
    };
    Value logits;
    if (spec.kind == AttentionKind::Mixture) {
      for (const AttentionSpec &part : spec.parts) {
        addPart(part);
      }
      logits = param(attn + ".mixture.logits");
    } else {
      addPart(spec);
    }
    newCaches.push_back(values);
    Value o = mlir::synth::FusedAttentionOp::create(
        b, loc(attn + ".attend"), t({batch, H, 1, c.headDim()}),
        b.getArrayAttr(parts), operands, logits, values, Value(), position,
        b.getUnitAttr());
    return linear(mergeHeads(o, attn + ".merge"), attn + ".o.weight", "",
                  attn + ".o");
  }

  /// `decode`: (token [B, 1], position [], caches..., parameters...) ->
  /// (logits [B, 1, V], updated caches...). Dot-product layers cache keys and
  /// values; synthesized ones only values (their scores for the new token do
  /// not depend on earlier tokens).
  void buildDecode(ModuleOp module) {
    int64_t L = c.maxLen, H = c.heads, d = c.headDim();
    SmallVector<std::pair<std::string, Type>> inputs = {
        {"token", t({B, 1}, i32)}, {"position", t({}, i32)}};
    SmallVector<std::string> cacheNames;
    for (size_t i = 0; i < c.decoderAttention.size(); ++i) {
      std::string layer = absl::StrCat("cache.layers.", i, ".");
      if (needsKeys(c.decoderAttention[i])) {
        cacheNames.push_back(layer + "k");
      }
      cacheNames.push_back(layer + "v");
    }
    for (const std::string &name : cacheNames) {
      inputs.push_back({name, t({B, H, L, d})});
    }
    SmallVector<Type> argTypes, resultTypes = {t({B, 1, c.vocabSize})};
    for (auto &[name, type] : inputs) {
      argTypes.push_back(type);
    }
    for (const ParamInfo &p : table) {
      argTypes.push_back(t(p.shape));
    }
    for (size_t i = 0; i < cacheNames.size(); ++i) {
      resultTypes.push_back(t({B, H, L, d}));
    }
    b.setInsertionPointToEnd(module.getBody());
    auto func = func::FuncOp::create(b, loc("decode"), "decode",
                                     b.getFunctionType(argTypes, resultTypes));
    Block *body = func.addEntryBlock();
    b.setInsertionPointToStart(body);
    std::map<std::string, Value> caches;
    for (auto [i, input] : llvm::enumerate(inputs)) {
      func.setArgAttr(i, "synth.input", b.getStringAttr(input.first));
      if (input.first.rfind("cache.", 0) == 0) {
        caches[input.first] = body->getArgument(i);
      }
    }
    bindParameters(func, body, inputs.size());

    Value position = mlir::synth::ToIndexOp::create(b, loc("position"),
                                                    body->getArgument(1));
    Value x = mlir::synth::EmbeddingOp::create(
        b, loc("embed"), t({B, 1, c.dModel}), param("embed.weight"),
        body->getArgument(0));
    x = mlir::synth::AddPositionsOp::create(b, loc("embed.positions"),
                                            x.getType(), x, param("pos.weight"),
                                            position);
    SmallVector<Value> newCaches;
    for (size_t i = 0; i < c.decoderAttention.size(); ++i) {
      std::string layer = absl::StrCat("layers.", i, ".");
      x = residual(x, layer + "attn_norm", layer + "attn.residual",
                   [&](Value h) {
                     return decodeAttention(h, c.decoderAttention[i], layer,
                                            position, caches, newCaches);
                   });
      x = residual(x, layer + "ffn_norm", layer + "ffn.residual",
                   [&](Value h) { return feedForward(h, layer); });
    }
    if (c.norm == NormPlacement::Pre) {
      x = layerNorm(x, "final_norm");
    }
    SmallVector<Value> results = {lmHead(x)};
    results.append(newCaches.begin(), newCaches.end());
    func::ReturnOp::create(b, loc("decode"), results);
    func.setResultAttr(0, "synth.output", b.getStringAttr("logits"));
    for (auto [i, name] : llvm::enumerate(cacheNames)) {
      func.setResultAttr(i + 1, "synth.output", b.getStringAttr(name));
    }
  }

  Value crossEntropy(Value logits, Value targets) {
    return mlir::synth::CrossEntropyOp::create(
        b, loc("loss"), t({}), logits, targets, b.getI64IntegerAttr(-100));
  }

  OpBuilder b;
  const ModelConfig &c;
  std::vector<ParamInfo> table;
  std::map<std::string, Value> params;

  /// Marks the arguments from `first` on as the parameter table's (name,
  /// trainability, no weight decay for those initialized to zeros or ones:
  /// biases, norm gains and offsets, mixture logits) and records them in
  /// `params`.
  void bindParameters(func::FuncOp func, Block *body, size_t first) {
    params.clear();
    for (auto [i, p] : llvm::enumerate(table)) {
      unsigned index = first + i;
      func.setArgAttr(index, "synth.param", b.getStringAttr(p.name));
      if (!p.trainable) {
        func.setArgAttr(index, "synth.trainable", b.getBoolAttr(false));
      }
      if (p.init == InitKind::Zeros || p.init == InitKind::Ones) {
        func.setArgAttr(index, "synth.no_decay", b.getUnitAttr());
      }
      params[p.name] = body->getArgument(index);
    }
  }
  Type f32, i32, i1;
  /// Batch, source (lm: unused; encoder: N) and target (lm: N) lengths.
  int64_t B, S, T;
};

} // namespace

absl::StatusOr<OwningOpRef<ModuleOp>>
buildModelModule(MLIRContext &context, const ModelConfig &config,
                 const ShapeOptions &shapes) {
  registerModelDialects(context);
  if (shapes.batch <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size must be positive, got ", shapes.batch));
  }
  int64_t n = shapes.seqLen ? shapes.seqLen : config.maxLen;
  int64_t srcLen = shapes.srcLen ? shapes.srcLen : n;
  int64_t tgtLen = shapes.tgtLen ? shapes.tgtLen : n;
  struct Check {
    const char *what;
    int64_t value;
  };
  for (Check check :
       {Check{"sequence length", n}, Check{"source length", srcLen},
        Check{"target length", tgtLen}}) {
    if (check.value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(check.what, " must be positive, got ", check.value));
    }
    if (check.value > config.maxLen) {
      return absl::InvalidArgumentError(
          absl::StrCat(check.what, " N = ", check.value,
                       " exceeds the model's max_len L = ", config.maxLen));
    }
  }
  // lm uses T for its sequence, encoder uses S.
  int64_t source = config.task == Task::Encoder ? n : srcLen;
  int64_t target = config.task == Task::LM ? n : tgtLen;

  OwningOpRef<ModuleOp> module =
      ModuleOp::create(NameLoc::get(StringAttr::get(&context, config.name)));
  if (!config.name.empty()) {
    (*module)->setAttr("synth.model", StringAttr::get(&context, config.name));
  }
  ModelIRBuilder(context, config, shapes.batch, source, target).build(*module);

  // The builder must only produce valid IR; report the verifier's message if
  // it did not (a bug, but never a crash).
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    diagnostics += diag.str() + "\n";
    return success();
  });
  if (failed(verify(*module))) {
    return absl::InternalError(
        absl::StrCat("generated IR failed to verify: ", diagnostics));
  }
  return module;
}

} // namespace synth
