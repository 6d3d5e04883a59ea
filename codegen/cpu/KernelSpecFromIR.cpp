//===- KernelSpecFromIR.cpp - synth.kernel -> KernelSpec ------------------===//

#include "codegen/cpu/KernelSpecFromIR.h"

#include "dialect/SynthOps.h"

#include "absl/strings/str_cat.h"
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
  if (mlir::synth::ScheduleAttr schedule = kernel.getScheduleAttr()) {
    spec.schedule.tileSizes.assign(schedule.getTileSizes().begin(),
                                   schedule.getTileSizes().end());
    spec.schedule.vectorWidth = schedule.getVectorWidth();
    spec.schedule.parallelDims.assign(schedule.getParallelDims().begin(),
                                      schedule.getParallelDims().end());
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
    OpSpec o;
    for (Value operand : op.getOperands()) {
      if (!ids.count(operand)) {
        return unsupported(&op, "operand defined outside the kernel");
      }
    }
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
            .Case([&](mlir::synth::AttendProbsOp) {
              o.kind = OpKind::AttendProbs;
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
              o.causal = fa.getCausal();
              for (auto [i, attr] : llvm::enumerate(
                       fa.getScoreParts()
                           .getAsRange<mlir::synth::ScorePartAttr>())) {
                ScorePartSpec part;
                part.kind = convert(attr.getKind());
                if (attr.getScale()) {
                  part.scale = attr.getScale().getValueAsDouble();
                }
                if (attr.getMaxLen()) {
                  part.maxLen = attr.getMaxLen().getInt();
                }
                part.operands = idsOf(fa.getPartOperands(i));
                o.parts.push_back(part);
              }
              if (fa.getMixtureLogits()) {
                o.logits = ids.lookup(fa.getMixtureLogits());
              }
              o.values = ids.lookup(fa.getValues());
              if (fa.getKeyMask()) {
                o.keyMask = ids.lookup(fa.getKeyMask());
              }
              return absl::OkStatus();
            })
            .Default([&](Operation *other) {
              return unsupported(other,
                                 "no CPU kernel for this op (standalone score "
                                 "ops and attend must go through "
                                 "synth-fuse-attention)");
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
