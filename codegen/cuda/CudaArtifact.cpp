//===- CudaArtifact.cpp - kernels of a module -> a CUDA artifact ----------===//
//
// Per entry function: one buffer per function argument (input or parameter)
// and per kernel result (arena temporary at its planned offset, or output),
// one call per kernel in program order (the same plan as the CPU artifact).
// Every kernel goes through the stages of CudaCodegen.h; its PTX, cubin and
// launch configuration are recorded under the manifest's "cuda" key.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/CudaArtifact.h"

#include "dialect/SynthOps.h"
#include "frontend/Parameters.h"
#include "runtime/Manifest.h"
#include "runtime/Safetensors.h"
#include "runtime/Sha256.h"

#include "absl/strings/str_cat.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <filesystem>
#include <fstream>
#include <map>

namespace synth::cuda {

using namespace mlir;
namespace fs = std::filesystem;

namespace {

absl::StatusOr<rt::BufferInfo> describeBuffer(Value v) {
  auto tensor = dyn_cast<RankedTensorType>(v.getType());
  if (!tensor || !tensor.hasStaticShape()) {
    return absl::InvalidArgumentError(
        "CUDA back end: expected a statically shaped tensor");
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
        "CUDA back end: only float32, int32 and i1 tensors are supported");
  }
  return info;
}

int64_t numel(Value v) {
  int64_t n = 1;
  for (int64_t d : cast<RankedTensorType>(v.getType()).getShape()) {
    n *= d;
  }
  return n;
}

/// Arithmetic of a kernel, as the CPU artifact counts it (2 per multiply-add
/// of matmul-shaped work, 1 per element otherwise), for synth-run bench.
int64_t kernelFlops(mlir::synth::KernelOp kernel) {
  int64_t flops = 0;
  for (Operation &op : kernel.getBody().front().without_terminator()) {
    Value result = op.getResult(0);
    if (auto linear = dyn_cast<mlir::synth::LinearOp>(op)) {
      flops +=
          2 * numel(result) *
          cast<RankedTensorType>(linear.getInput().getType()).getShape().back();
    } else if (auto attention = dyn_cast<mlir::synth::FusedAttentionOp>(op)) {
      auto v = cast<RankedTensorType>(attention.getValues().getType());
      int64_t perScore = 0;
      for (auto [i, attr] :
           llvm::enumerate(attention.getScoreParts()
                               .getAsRange<mlir::synth::ScorePartAttr>())) {
        auto first = cast<RankedTensorType>(
            attention.getPartOperands(i).front().getType());
        switch (attr.getKind()) {
        case mlir::synth::ScoreKind::Dot:
          perScore += 2 * first.getShape()[3];
          break;
        case mlir::synth::ScoreKind::Dense:
        case mlir::synth::ScoreKind::FactorizedDense:
          perScore += 2 * cast<RankedTensorType>(
                              attention.getPartOperands(i)[1].getType())
                              .getShape()[2];
          break;
        case mlir::synth::ScoreKind::Random:
          break;
        case mlir::synth::ScoreKind::FactorizedRandom:
          perScore += 2 * first.getShape()[2];
          break;
        }
      }
      int64_t n = cast<RankedTensorType>(result.getType()).getShape()[2];
      flops += v.getShape()[0] * v.getShape()[1] * n * v.getShape()[2] *
               (perScore + 2 * v.getShape()[3]);
    } else {
      flops += numel(result);
    }
  }
  return flops;
}

/// The execution plan of one entry function.
absl::StatusOr<rt::EntryInfo> planEntry(func::FuncOp func) {
  rt::EntryInfo entry;
  entry.name = func.getSymName().str();
  DenseMap<Value, int64_t> bufferOf;
  auto addBuffer = [&](Value v, rt::BufferInfo info) -> absl::Status {
    absl::StatusOr<rt::BufferInfo> described = describeBuffer(v);
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
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "function @", entry.name, " argument #", arg.getArgNumber(),
          " has neither synth.input nor synth.param"));
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
    for (Value input : kernel.getInputs()) {
      call.buffers.push_back(bufferOf.lookup(input));
    }
    for (auto [i, result] : llvm::enumerate(kernel.getResults())) {
      rt::BufferInfo info;
      if (offsets[i] < 0) {
        info.storage = rt::Storage::Output;
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
  for (Value v : func.getBody().front().getTerminator()->getOperands()) {
    std::string name = entry.name == "loss" ? "loss" : "logits";
    entry.outputs.push_back({name, bufferOf.lookup(v)});
  }
  return entry;
}

absl::Status writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    return absl::DataLossError(absl::StrCat(path, ": write failed"));
  }
  return absl::OkStatus();
}

json::Value integers(const std::array<int64_t, 3> &values) {
  json::Value out = json::Value::array();
  for (int64_t v : values) {
    out.push(json::Value::integer(v));
  }
  return out;
}

} // namespace

absl::Status writeCudaArtifact(ModuleOp module,
                               const std::vector<ParamInfo> &table,
                               uint64_t seed,
                               const CudaArtifactOptions &options) {
  if (!isSupportedArch(options.target.arch)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported GPU arch ", options.target.arch,
                     " (expected ", supportedArchs(), ")"));
  }
  std::error_code error;
  fs::create_directories(options.output, error);
  if (error) {
    return absl::PermissionDeniedError(absl::StrCat(
        options.output, ": cannot create directory: ", error.message()));
  }

  rt::Manifest manifest;
  manifest.model = options.model;
  manifest.target.kind = "cuda";
  manifest.target.arch = options.target.arch;
  for (const ParamInfo &p : table) {
    manifest.parameters.push_back({p.name, p.shape, DType::F32, p.trainable});
  }
  json::Value skipped = json::Value::array();
  for (func::FuncOp func : module.getOps<func::FuncOp>()) {
    if (!isCudaEntry(func.getSymName().str())) {
      skipped.push(json::Value::string(func.getSymName().str()));
      continue;
    }
    absl::StatusOr<rt::EntryInfo> entry = planEntry(func);
    if (!entry.ok()) {
      return entry.status();
    }
    manifest.entries.push_back(std::move(*entry));
  }

  // Stages 1-3 for every kernel at once, then ptxas per kernel.
  registerCudaDialects(*module.getContext());
  std::vector<LaunchInfo> launches;
  absl::StatusOr<OwningOpRef<ModuleOp>> gpuModule =
      lowerKernelsToGpu(module, &launches);
  if (!gpuModule.ok()) {
    return gpuModule.status();
  }
  if (absl::Status s = lowerGpuToNvvm(**gpuModule, options.target); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ptx =
      translateToPtx(**gpuModule, options.target);
  if (!ptx.ok()) {
    return ptx.status();
  }
  std::map<std::string, std::string> ptxOf(ptx->begin(), ptx->end());
  bool haveToolkit = !findToolkit(options.target).empty();
  if (options.requireCubin && !haveToolkit) {
    return absl::NotFoundError("no CUDA toolkit with ptxas found (set "
                               "CUDA_HOME): cannot write cubins");
  }

  std::vector<std::string> files;
  json::Value kernels = json::Value::object();
  for (const LaunchInfo &launch : launches) {
    auto found = ptxOf.find(launch.name);
    if (found == ptxOf.end()) {
      return absl::InternalError(
          absl::StrCat("CUDA back end: no PTX for kernel ", launch.name));
    }
    json::Value entry = json::Value::object();
    entry.set("entry", json::Value::string(launch.name));
    std::string ptxName = launch.name + ".ptx";
    if (absl::Status s = writeFile(
            (fs::path(options.output) / ptxName).string(), found->second);
        !s.ok()) {
      return s;
    }
    files.push_back(ptxName);
    entry.set("ptx", json::Value::string(ptxName));
    if (haveToolkit) {
      std::string log;
      absl::StatusOr<std::string> cubin =
          assembleCubin(found->second, options.target, &log);
      if (!cubin.ok()) {
        return absl::InternalError(absl::StrCat("kernel ", launch.name, ": ",
                                                cubin.status().message()));
      }
      std::string cubinName = launch.name + ".cubin";
      if (absl::Status s = writeFile(
              (fs::path(options.output) / cubinName).string(), *cubin);
          !s.ok()) {
        return s;
      }
      files.push_back(cubinName);
      entry.set("cubin", json::Value::string(cubinName));
    }
    entry.set("grid", integers(launch.grid));
    entry.set("block", integers(launch.block));
    entry.set("shared_bytes", json::Value::integer(launch.sharedBytes));
    entry.set("anchor", json::Value::string(launch.anchor));
    kernels.set(launch.name, std::move(entry));
  }

  std::string weightsPath =
      (fs::path(options.output) / "weights.safetensors").string();
  safetensors::File weights = initializeParameters(table, seed);
  weights.metadata.push_back({"format", "synthc-weights"});
  weights.metadata.push_back({"seed", std::to_string(seed)});
  if (absl::Status s = safetensors::write(weightsPath, weights); !s.ok()) {
    return s;
  }
  files.push_back("weights.safetensors");
  for (const std::string &name : files) {
    std::string path = (fs::path(options.output) / name).string();
    absl::StatusOr<std::string> digest = sha256File(path);
    if (!digest.ok()) {
      return digest.status();
    }
    manifest.files.push_back(
        {name, *digest, static_cast<int64_t>(fs::file_size(path))});
  }

  std::string manifestPath =
      (fs::path(options.output) / "manifest.json").string();
  if (absl::Status s = rt::validateManifest(manifest, manifestPath); !s.ok()) {
    return absl::InternalError(absl::StrCat(
        "the compiler produced an invalid manifest: ", s.message()));
  }
  // The common manifest, plus what only a CUDA runtime needs.
  absl::StatusOr<json::Value> document =
      json::parse(rt::serializeManifest(manifest), manifestPath);
  if (!document.ok()) {
    return document.status();
  }
  json::Value cuda = json::Value::object();
  cuda.set("arch", json::Value::string(options.target.arch));
  cuda.set("abi", json::Value::string("bare-pointers"));
  cuda.set("kernels", std::move(kernels));
  cuda.set("skipped_entries", std::move(skipped));
  document->set("cuda", std::move(cuda));
  return writeFile(manifestPath, json::serialize(*document, true) + "\n");
}

} // namespace synth::cuda
