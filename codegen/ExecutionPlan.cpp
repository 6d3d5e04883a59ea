//===- ExecutionPlan.cpp - a function of kernels -> an artifact entry -----===//

#include "codegen/ExecutionPlan.h"

#include "dialect/SynthOps.h"
#include "runtime/Safetensors.h"
#include "runtime/Sha256.h"

#include "absl/strings/str_cat.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <filesystem>
#include <set>

namespace synth::codegen {

using namespace mlir;

namespace {

int64_t numel(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// 2 x multiply-adds per attention score of one fused attention part.
int64_t scoreFlops(mlir::synth::FusedAttentionOp attention, unsigned part,
                   mlir::synth::ScoreKind kind) {
  OperandRange operands = attention.getPartOperands(part);
  switch (kind) {
  case mlir::synth::ScoreKind::Dot:
    return 2 * shapeOf(operands[0])[3];
  case mlir::synth::ScoreKind::Dense:
  case mlir::synth::ScoreKind::FactorizedDense:
    return 2 * shapeOf(operands[1])[2];
  case mlir::synth::ScoreKind::Random:
    return 0;
  case mlir::synth::ScoreKind::FactorizedRandom:
    return 2 * shapeOf(operands[0])[2];
  }
  return 0;
}

} // namespace

absl::StatusOr<rt::BufferInfo> describeBuffer(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape()) {
    return absl::InvalidArgumentError(
        "execution plan: expected a statically shaped tensor");
  }
  rt::BufferInfo info;
  info.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
  Type element = tensor.getElementType();
  if (element.isF32()) {
    info.dtype = DType::F32;
  } else if (element.isInteger(32)) {
    info.dtype = DType::I32;
  } else if (element.isInteger(1)) {
    info.dtype = DType::U8;
  } else {
    return absl::UnimplementedError(
        "execution plan: only float32, int32 and i1 tensors are supported");
  }
  return info;
}

int64_t kernelFlops(mlir::synth::KernelOp kernel) {
  int64_t flops = 0;
  for (Operation &op : kernel.getBody().front().without_terminator()) {
    if (op.getNumResults() != 1 ||
        !isa<RankedTensorType>(op.getResult(0).getType())) {
      continue; // positions
    }
    Value result = op.getResult(0);
    if (auto linear = dyn_cast<mlir::synth::LinearOp>(op)) {
      flops += 2 * numel(result) * shapeOf(linear.getInput()).back();
    } else if (auto probs = dyn_cast<mlir::synth::AttendProbsOp>(op)) {
      flops += 2 * numel(result) * shapeOf(probs.getProbs())[2];
    } else if (auto attend = dyn_cast<mlir::synth::AttendOp>(op)) {
      // Unfused attention (synthc --no-fuse=attention), counted like the
      // fused op: P V here, each score in its score op's kernel.
      flops += 2 * numel(result) * shapeOf(attend.getValues())[2];
    } else if (auto dot = dyn_cast<mlir::synth::DotScoresOp>(op)) {
      flops += 2 * numel(result) * shapeOf(dot.getQ())[3];
    } else if (isa<mlir::synth::DenseScoresOp,
                   mlir::synth::FactorizedDenseScoresOp>(op)) {
      flops += 2 * numel(result) * shapeOf(op.getOperand(1))[2];
    } else if (auto fr = dyn_cast<mlir::synth::FactorizedRandomScoresOp>(op)) {
      flops += 2 * numel(result) * shapeOf(fr.getR1())[2];
    } else if (auto attention = dyn_cast<mlir::synth::FusedAttentionOp>(op)) {
      ArrayRef<int64_t> v = shapeOf(attention.getValues());
      int64_t perScore = 0;
      for (auto [i, part] :
           llvm::enumerate(attention.getScoreParts()
                               .getAsRange<mlir::synth::ScorePartAttr>())) {
        perScore += scoreFlops(attention, i, part.getKind());
      }
      int64_t queries = shapeOf(result)[2];
      flops += v[0] * v[1] * queries * v[2] * (perScore + 2 * v[3]);
    } else {
      flops += numel(result);
    }
  }
  return flops;
}

absl::StatusOr<rt::EntryInfo> planEntry(func::FuncOp func) {
  rt::EntryInfo entry;
  entry.name = func.getSymName().str();
  DenseMap<Value, int64_t> bufferOf;
  auto addBuffer = [&](Value v, rt::BufferInfo info) -> absl::Status {
    absl::StatusOr<rt::BufferInfo> described = describeBuffer(v.getType());
    if (!described.ok()) {
      return described.status();
    }
    info.shape = described->shape;
    info.dtype = described->dtype;
    bufferOf[v] = static_cast<int64_t>(entry.buffers.size());
    entry.buffers.push_back(info);
    return absl::OkStatus();
  };
  for (BlockArgument arg : func.getArguments()) {
    rt::BufferInfo info;
    if (auto input = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                       "synth.input")) {
      info.storage = rt::Storage::Input;
      entry.inputs.push_back({input.str(), int64_t(entry.buffers.size())});
    } else if (auto param = func.getArgAttrOfType<StringAttr>(
                   arg.getArgNumber(), "synth.param")) {
      info.storage = rt::Storage::Param;
      info.param = param.str();
    } else if (auto state = func.getArgAttrOfType<StringAttr>(
                   arg.getArgNumber(), "synth.state")) {
      info.storage = rt::Storage::State;
      info.param = state.str();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "function @", entry.name, " argument #", arg.getArgNumber(),
          " has none of synth.input, synth.param and synth.state"));
    }
    if (absl::Status s = addBuffer(arg, info); !s.ok()) {
      return s;
    }
  }
  auto bytes = func->getAttrOfType<IntegerAttr>("synth.arena_bytes");
  if (!bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("function @", entry.name,
                     " has no memory plan (run synth-plan-memory)"));
  }
  entry.arenaBytes = bytes.getInt();
  Operation *terminator = func.getBody().front().getTerminator();
  // Results marked synth.updates = <argument> are written in place of that
  // argument (a training step's parameters and moments).
  DenseMap<Value, int64_t> updateOf;
  std::set<int64_t> updatedBuffers;
  for (auto [i, v] : llvm::enumerate(terminator->getOperands())) {
    if (auto target =
            func.getResultAttrOfType<IntegerAttr>(i, "synth.updates")) {
      int64_t arg = target.getInt();
      if (arg < 0 || arg >= static_cast<int64_t>(func.getNumArguments()) ||
          updateOf.count(v)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "function @", entry.name, " result #", i,
            ": synth.updates names no argument, or a value updates twice"));
      }
      updateOf[v] = bufferOf.lookup(func.getArgument(arg));
      updatedBuffers.insert(updateOf[v]);
      entry.updates.push_back(updateOf[v]);
    }
  }
  for (Operation &op : func.getBody().front().without_terminator()) {
    auto kernel = dyn_cast<mlir::synth::KernelOp>(op);
    if (!kernel) {
      return absl::InvalidArgumentError(absl::StrCat(
          "function @", entry.name, " contains an op outside kernels: ",
          op.getName().getStringRef().str()));
    }
    auto offsets =
        kernel->getAttrOfType<DenseI64ArrayAttr>("synth.arena_offsets");
    if (!offsets || offsets.size() != kernel.getNumResults()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kernel ", kernel.getKernelName().str(),
                       " has no memory plan (run synth-plan-memory)"));
    }
    rt::CallInfo call;
    call.kernel = kernel.getKernelName().str();
    // A kernel that reads only parameters (and values derived from them)
    // computes the same result on every run: run it once per parameter
    // binding and keep its results (derived buffers) instead.
    call.once = true;
    for (Value input : kernel.getInputs()) {
      call.buffers.push_back(bufferOf.lookup(input));
      rt::Storage storage = entry.buffers[call.buffers.back()].storage;
      // (A parameter this entry updates changes from run to run.)
      call.once &= (storage == rt::Storage::Param &&
                    !updatedBuffers.count(call.buffers.back())) ||
                   storage == rt::Storage::Derived;
    }
    for (auto [i, result] : llvm::enumerate(kernel.getResults())) {
      if (auto it = updateOf.find(result); it != updateOf.end()) {
        call.once = false;
        call.buffers.push_back(it->second);
        bufferOf[result] = it->second;
        continue;
      }
      rt::BufferInfo info;
      if (offsets[i] < 0) {
        info.storage = rt::Storage::Output;
        call.once = false;
      } else if (call.once) {
        info.storage = rt::Storage::Derived;
      } else {
        info.storage = rt::Storage::Arena;
        info.offset = offsets[i];
      }
      int64_t index = static_cast<int64_t>(entry.buffers.size());
      if (absl::Status s = addBuffer(result, info); !s.ok()) {
        return s;
      }
      call.buffers.push_back(index);
    }
    call.flops = kernelFlops(kernel);
    for (int64_t b : call.buffers) {
      call.bytes += entry.buffers[b].byteSize();
    }
    entry.calls.push_back(call);
  }
  // Outputs are named by the functions' synth.output result attributes.
  for (auto [i, v] : llvm::enumerate(terminator->getOperands())) {
    if (updateOf.count(v)) {
      continue;
    }
    auto name = func.getResultAttrOfType<StringAttr>(i, "synth.output");
    std::string fallback = entry.name == "loss" ? "loss" : "logits";
    if (i > 0) {
      fallback = absl::StrCat("output", i);
    }
    entry.outputs.push_back({name ? name.str() : fallback, bufferOf.lookup(v)});
  }
  return entry;
}

absl::Status writeInitialWeights(const std::string &dir,
                                 const std::vector<ParamInfo> &table,
                                 uint64_t seed) {
  safetensors::File weights = initializeParameters(table, seed);
  weights.metadata.push_back({"format", "synthc-weights"});
  weights.metadata.push_back({"seed", std::to_string(seed)});
  return safetensors::write(
      (std::filesystem::path(dir) / "weights.safetensors").string(), weights);
}

absl::Status recordFiles(rt::Manifest &manifest, const std::string &dir,
                         const std::vector<std::string> &names) {
  for (const std::string &name : names) {
    std::string path = (std::filesystem::path(dir) / name).string();
    absl::StatusOr<std::string> digest = sha256File(path);
    if (!digest.ok()) {
      return digest.status();
    }
    std::error_code error;
    auto size = std::filesystem::file_size(path, error);
    if (error) {
      return absl::NotFoundError(
          absl::StrCat(path, ": cannot stat: ", error.message()));
    }
    manifest.files.push_back({name, *digest, static_cast<int64_t>(size)});
  }
  return absl::OkStatus();
}

} // namespace synth::codegen
