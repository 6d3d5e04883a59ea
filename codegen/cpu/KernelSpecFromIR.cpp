//===- KernelSpecFromIR.cpp - synth.kernel -> KernelSpec ------------------===//

#include "codegen/cpu/KernelSpecFromIR.h"
#include "passes/KernelUtils.h"

#include "dialect/SynthOps.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

namespace synth::cpu {

using namespace mlir;

namespace {

std::string where(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << op->getName() << " at " << op->getLoc();
  return text;
}

absl::Status unsupported(Operation *op, const std::string &why) {
  return absl::UnimplementedError(
      absl::StrCat("CPU back end: ", where(op), ": ", why));
}

ScoreKind convert(mlir::synth::ScoreKind kind) {
  switch (kind) {
  case mlir::synth::ScoreKind::Dot:
    return ScoreKind::Dot;
  case mlir::synth::ScoreKind::Dense:
    return ScoreKind::Dense;
  case mlir::synth::ScoreKind::Random:
    return ScoreKind::Random;
  case mlir::synth::ScoreKind::FactorizedRandom:
    return ScoreKind::FactorizedRandom;
  case mlir::synth::ScoreKind::FactorizedDense:
    return ScoreKind::FactorizedDense;
  }
  return ScoreKind::Dot;
}

/// The score parts of a fused attention or of its gradient.
template <typename OpT, typename IdsOf>
std::vector<ScorePartSpec> describeParts(OpT op, IdsOf idsOf) {
  std::vector<ScorePartSpec> parts;
  for (auto [i, attr] : llvm::enumerate(
           op.getScoreParts()
               .template getAsRange<mlir::synth::ScorePartAttr>())) {
    ScorePartSpec part;
    part.kind = convert(attr.getKind());
    if (attr.getScale()) {
      part.scale = attr.getScale().getValueAsDouble();
    }
    if (attr.getMaxLen()) {
      part.maxLen = attr.getMaxLen().getInt();
    }
    part.operands = idsOf(op.getPartOperands(i));
    parts.push_back(part);
  }
  return parts;
}

/// The one part of a standalone score op (synthc --no-fuse=attention).
ScorePartSpec scoreOp(ScoreKind kind, double scale, int64_t maxLen,
                      const std::vector<int> &operands) {
  ScorePartSpec part;
  part.kind = kind;
  part.scale = static_cast<float>(scale);
  part.maxLen = maxLen;
  part.operands = operands;
  return part;
}

/// What a fused attention, its statistics and its gradients share: the
/// causal flag, the score parts, mixture logits, values and key mask.
template <typename OpT, typename IdsOf>
void describeAttention(OpT op, const DenseMap<Value, int> &ids, IdsOf idsOf,
                       OpSpec &o) {
  o.causal = op.getCausal();
  o.parts = describeParts(op, idsOf);
  if (op.getMixtureLogits()) {
    o.logits = ids.lookup(op.getMixtureLogits());
  }
  o.values = ids.lookup(op.getValues());
  if (op.getKeyMask()) {
    o.keyMask = ids.lookup(op.getKeyMask());
  }
}

/// synth.adamw as three single-result ops: m' and v' from the gradient,
/// then the parameter from m' and v'. The kernel's outputs stay in the op's
/// result order (parameter, m, v).
template <typename AddValue>
absl::Status describeAdamW(mlir::synth::AdamWOp adam,
                           const DenseMap<Value, int> &ids, KernelSpec &spec,
                           AddValue &addValue) {
  OpSpec base;
  base.beta1 = adam.getBeta1().convertToFloat();
  base.beta2 = adam.getBeta2().convertToFloat();
  base.epsilon = adam.getEpsilon().convertToFloat();
  base.weightDecay = adam.getWeightDecay().convertToFloat();
  base.maxGradNorm =
      adam.getGradSqNorm() ? adam.getMaxGradNorm().convertToFloat() : 0.0f;
  std::vector<int> norm;
  if (base.maxGradNorm > 0.0f) {
    norm.push_back(ids.lookup(adam.getGradSqNorm()));
  }
  int grad = ids.lookup(adam.getGrad());
  OpSpec m = base, v = base, p = base;
  m.kind = OpKind::AdamMoment1;
  m.operands = {grad, ids.lookup(adam.getM())};
  m.operands.insert(m.operands.end(), norm.begin(), norm.end());
  v.kind = OpKind::AdamMoment2;
  v.operands = {grad, ids.lookup(adam.getV())};
  v.operands.insert(v.operands.end(), norm.begin(), norm.end());
  absl::StatusOr<int> mId = addValue(adam.getNewM());
  absl::StatusOr<int> vId = mId.ok() ? addValue(adam.getNewV()) : mId;
  if (!vId.ok()) {
    return vId.status();
  }
  m.result = *mId;
  v.result = *vId;
  p.kind = OpKind::AdamParam;
  p.operands = {ids.lookup(adam.getParam()), *mId, *vId,
                ids.lookup(adam.getLr()), ids.lookup(adam.getStep())};
  absl::StatusOr<int> pId = addValue(adam.getNewParam());
  if (!pId.ok()) {
    return pId.status();
  }
  p.result = *pId;
  spec.ops.push_back(std::move(m));
  spec.ops.push_back(std::move(v));
  spec.ops.push_back(std::move(p));
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<TensorSpec> describeTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape()) {
    return absl::InvalidArgumentError("CPU back end: expected a statically "
                                      "shaped tensor");
  }
  TensorSpec spec;
  spec.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
  Type element = tensor.getElementType();
  if (element.isF32()) {
    spec.type = ElementType::F32;
  } else if (element.isInteger(32)) {
    spec.type = ElementType::I32;
  } else if (element.isInteger(1)) {
    spec.type = ElementType::U8;
  } else {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << element;
    return absl::UnimplementedError(
        absl::StrCat("CPU back end: element type ", text,
                     " is not supported yet (float32, int32 and i1 are)"));
  }
  return spec;
}

absl::StatusOr<KernelSpec> describeKernel(mlir::synth::KernelOp kernel) {
  KernelSpec spec;
  spec.name = kernel.getKernelName().str();
  DenseMap<Value, int> ids;
  auto addValue = [&](Value v) -> absl::StatusOr<int> {
    absl::StatusOr<TensorSpec> tensor = describeTensor(v.getType());
    if (!tensor.ok()) {
      return tensor.status();
    }
    int id = static_cast<int>(spec.values.size());
    spec.values.push_back(*tensor);
    ids[v] = id;
    return id;
  };
  Block &body = kernel.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    if (auto status = addValue(arg); !status.ok()) {
      return status.status();
    }
  }
  spec.numInputs = static_cast<int>(body.getNumArguments());
  // Every target class's schedule, checked against the kernel's fields.
  spec.traits = mlir::synth::kernelTraits(kernel);
  if (mlir::synth::ScheduleAttr schedule = kernel.getScheduleAttr()) {
    for (mlir::NamedAttribute target : schedule.getTargets()) {
      std::string cls = target.getName().str();
      const ::synth::sched::Isa *isa = ::synth::sched::findIsa(cls);
      auto fields = dyn_cast<mlir::DictionaryAttr>(target.getValue());
      if (!isa || !fields) {
        return absl::InvalidArgumentError(absl::StrCat(
            "kernel '", spec.name, "': bad schedule target '", cls, "'"));
      }
      ::synth::sched::Schedule s = mlir::synth::scheduleFromAttr(fields);
      if (auto error = ::synth::sched::validate(s, spec.traits, *isa)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "kernel '", spec.name, "', schedule for ", cls, ": ", *error));
      }
      spec.schedules[cls] = std::move(s);
    }
  }
  spec.scheduler = mlir::synth::cpuScheduler(kernel);
  if (!spec.scheduler.empty() &&
      !::synth::sched::isAutoscheduler(spec.scheduler)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kernel '", spec.name, "': unknown CPU scheduler '", spec.scheduler,
        "' (expected ", absl::StrJoin(::synth::sched::autoschedulers(), ", "),
        ")"));
  }
  for (Operation &op : body) {
    if (!isa<mlir::synth::ToIndexOp>(op)) {
      spec.anchor = op.getName().stripDialect().str();
      break;
    }
  }

  for (Operation &op : body.without_terminator()) {
    // A position: the index stands for the scalar tensor it was read from.
    if (auto toIndex = dyn_cast<mlir::synth::ToIndexOp>(op)) {
      if (!ids.count(toIndex.getInput())) {
        return unsupported(&op, "operand defined outside the kernel");
      }
      ids[toIndex.getResult()] = ids.lookup(toIndex.getInput());
      continue;
    }
    for (Value operand : op.getOperands()) {
      if (!ids.count(operand)) {
        return unsupported(&op, "operand defined outside the kernel");
      }
    }
    if (auto adam = dyn_cast<mlir::synth::AdamWOp>(op)) {
      if (auto status = describeAdamW(adam, ids, spec, addValue);
          !status.ok()) {
        return status;
      }
      continue;
    }
    OpSpec o;
    auto idsOf = [&](ValueRange values) {
      std::vector<int> out;
      for (Value v : values) {
        out.push_back(ids.lookup(v));
      }
      return out;
    };
    o.operands = idsOf(op.getOperands());
    absl::Status status =
        llvm::TypeSwitch<Operation *, absl::Status>(&op)
            .Case([&](mlir::synth::EmbeddingOp) {
              o.kind = OpKind::Embedding;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::AddPositionsOp p) {
              o.kind = OpKind::AddPositions;
              if (p.getOffset()) {
                o.position = ids.lookup(p.getOffset());
              }
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::SliceRowsOp) {
              o.kind = OpKind::SliceRows;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::CacheUpdateOp) {
              o.kind = OpKind::CacheUpdate;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::AttentionProbsOp probs) {
              o.kind = OpKind::AttentionProbs;
              o.causal = probs.getCausal();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::AttendProbsOp ap) {
              o.kind = OpKind::AttendProbs;
              o.transposeProbs = ap.getTransposeProbs();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::EmbeddingGradOp) {
              o.kind = OpKind::EmbeddingGrad;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::LinearWeightGradOp g) {
              o.kind = OpKind::LinearWeightGrad;
              o.transposeWeight = g.getTransposeWeight();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::SumRowsOp) {
              o.kind = OpKind::SumRows;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::LayerNormGradOp g) {
              o.kind = OpKind::LayerNormGrad;
              o.epsilon = g.getEpsilon().convertToFloat();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::LayerNormGammaGradOp g) {
              o.kind = OpKind::LayerNormGammaGrad;
              o.epsilon = g.getEpsilon().convertToFloat();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::ReluGradOp) {
              o.kind = OpKind::ReluGrad;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::GeluGradOp g) {
              o.kind = OpKind::GeluGrad;
              o.geluTanh =
                  g.getApproximation() == mlir::synth::GeluApproximation::Tanh;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::PositionsGradOp) {
              o.kind = OpKind::PositionsGrad;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::MeanPoolGradOp) {
              o.kind = OpKind::MeanPoolGrad;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::CrossEntropyGradOp g) {
              o.kind = OpKind::CrossEntropyGrad;
              o.ignoreIndex = g.getIgnoreIndex();
              if (g.getScale()) {
                o.scale = ids.lookup(g.getScale());
              }
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::SumSquaresOp) {
              o.kind = OpKind::SumSquares;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::LearningRateOp lr) {
              o.kind = OpKind::LearningRate;
              o.peak = lr.getPeak().convertToFloat();
              o.warmupSteps = lr.getWarmupSteps();
              o.finalRatio = lr.getFinalRatio().convertToFloat();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::AttentionStatsOp st) {
              o.kind = OpKind::AttentionStats;
              describeAttention(st, ids, idsOf, o);
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::FusedAttentionGradOp fa) {
              o.kind = OpKind::FusedAttentionGrad;
              describeAttention(fa, ids, idsOf, o);
              o.output = ids.lookup(fa.getOutput());
              o.dOutput = ids.lookup(fa.getDOutput());
              o.rowStats = ids.lookup(fa.getRowStats());
              o.wrt = static_cast<int>(fa.getWrt());
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::LayerNormOp ln) {
              o.kind = OpKind::LayerNorm;
              o.epsilon = ln.getEpsilon().convertToFloat();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::LinearOp linear) {
              o.kind = OpKind::Linear;
              o.hasBias = static_cast<bool>(linear.getBias());
              o.transposeWeight = linear.getTransposeWeight();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::ReluOp) {
              o.kind = OpKind::Relu;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::GeluOp gelu) {
              o.kind = OpKind::Gelu;
              o.geluTanh = gelu.getApproximation() ==
                           mlir::synth::GeluApproximation::Tanh;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::AddOp) {
              o.kind = OpKind::Add;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::SplitHeadsOp) {
              o.kind = OpKind::SplitHeads;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::MergeHeadsOp) {
              o.kind = OpKind::MergeHeads;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::MeanPoolOp) {
              o.kind = OpKind::MeanPool;
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::CrossEntropyOp ce) {
              o.kind = OpKind::CrossEntropy;
              o.ignoreIndex = ce.getIgnoreIndex();
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::FusedAttentionOp fa) {
              o.kind = OpKind::FusedAttention;
              if (fa.getQueryOffset()) {
                o.position = ids.lookup(fa.getQueryOffset());
              }
              describeAttention(fa, ids, idsOf, o);
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::DotScoresOp dot) {
              o.kind = OpKind::DotScores;
              o.parts = {scoreOp(ScoreKind::Dot, dot.getEffectiveScale(), 0,
                                 o.operands)};
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::DenseScoresOp dense) {
              o.kind = OpKind::DenseScores;
              o.parts = {scoreOp(ScoreKind::Dense, 1.0, dense.getMaxLen(),
                                 o.operands)};
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::RandomScoresOp random) {
              o.kind = OpKind::RandomScores;
              o.parts = {scoreOp(ScoreKind::Random, 1.0, random.getMaxLen(),
                                 o.operands)};
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::FactorizedRandomScoresOp fr) {
              o.kind = OpKind::FactorizedRandomScores;
              o.parts = {scoreOp(ScoreKind::FactorizedRandom, 1.0,
                                 fr.getMaxLen(), o.operands)};
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::FactorizedDenseScoresOp fd) {
              o.kind = OpKind::FactorizedDenseScores;
              o.parts = {scoreOp(ScoreKind::FactorizedDense, 1.0,
                                 fd.getMaxLen(), o.operands)};
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::MixtureScoresOp mixture) {
              o.kind = OpKind::MixtureScores;
              o.logits = ids.lookup(mixture.getLogits());
              return absl::OkStatus();
            })
            .Case([&](mlir::synth::AttendOp attend) {
              o.kind = OpKind::Attend;
              o.values = ids.lookup(attend.getValues());
              if (attend.getKeyMask()) {
                o.keyMask = ids.lookup(attend.getKeyMask());
              }
              if (attend.getQueryOffset()) {
                o.position = ids.lookup(attend.getQueryOffset());
              }
              o.causal = attend.getCausal();
              return absl::OkStatus();
            })
            .Default([&](Operation *other) {
              return unsupported(other, "no CPU kernel for this op");
            });
    if (!status.ok()) {
      return status;
    }
    absl::StatusOr<int> result = addValue(op.getResult(0));
    if (!result.ok()) {
      return result.status();
    }
    o.result = *result;
    spec.ops.push_back(std::move(o));
  }
  for (Value v : body.getTerminator()->getOperands()) {
    spec.outputs.push_back(ids.lookup(v));
  }
  return spec;
}

} // namespace synth::cpu
