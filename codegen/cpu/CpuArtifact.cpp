//===- CpuArtifact.cpp - kernels of a module -> a CPU artifact ------------===//
//
// Per entry function: one buffer per function argument (input or parameter)
// and per kernel result (arena temporary at its planned offset, or output),
// one call per kernel in program order. Kernels are compiled once per target
// variant; Halide's runtime is compiled once; the system C++ compiler links
// them into kernels.so.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuArtifact.h"

#include "codegen/cpu/HalideKernels.h"
#include "codegen/cpu/KernelSpecFromIR.h"
#include "dialect/SynthOps.h"
#include "frontend/Parameters.h"
#include "runtime/Manifest.h"
#include "runtime/Safetensors.h"
#include "runtime/Sha256.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace synth::cpu {

using namespace mlir;
namespace fs = std::filesystem;

namespace {

DType dtypeOf(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return DType::F32;
  case ElementType::I32:
    return DType::I32;
  case ElementType::U8:
    return DType::U8;
  }
  return DType::F32;
}

/// Arithmetic of a kernel (2 FLOPs per multiply-add of matmul-shaped work,
/// 1 per element otherwise), for synth-run bench.
int64_t kernelFlops(const KernelSpec &k) {
  int64_t flops = 0;
  for (const OpSpec &op : k.ops) {
    const TensorSpec &out = k.values[op.result];
    switch (op.kind) {
    case OpKind::Linear:
      flops += 2 * out.numel() * k.values[op.operands[0]].shape.back();
      break;
    case OpKind::AttendProbs:
      flops += 2 * out.numel() * k.values[op.operands[0]].shape[2];
      break;
    case OpKind::FusedAttention: {
      const TensorSpec &v = k.values[op.values];
      int64_t b = v.shape[0], h = v.shape[1], m = v.shape[2], d = v.shape[3];
      int64_t n = out.shape[2];
      int64_t perScore = 0;
      for (const ScorePartSpec &part : op.parts) {
        const TensorSpec &first = k.values[part.operands[0]];
        switch (part.kind) {
        case ScoreKind::Dot:
          perScore += 2 * first.shape[3];
          break;
        case ScoreKind::Dense:
        case ScoreKind::FactorizedDense:
          perScore += 2 * k.values[part.operands[1]].shape[2];
          break;
        case ScoreKind::Random:
          break;
        case ScoreKind::FactorizedRandom:
          perScore += 2 * first.shape[2];
          break;
        }
      }
      flops += b * h * n * m * (perScore + 2 * d);
      break;
    }
    default:
      flops += out.numel();
    }
  }
  return flops;
}

/// Quotes `text` for /bin/sh.
std::string shellQuote(const std::string &text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

/// The C++ compiler that links kernels.so: $SYNTH_LINK_CXX, else the first of
/// clang++-22, c++, g++ on PATH.
absl::StatusOr<std::string> findLinker() {
  if (const char *env = std::getenv("SYNTH_LINK_CXX")) {
    return std::string(env);
  }
  for (const char *candidate : {"clang++-22", "c++", "g++"}) {
    std::string probe =
        absl::StrCat("command -v ", candidate, " >/dev/null 2>&1");
    if (std::system(probe.c_str()) == 0) {
      return std::string(candidate);
    }
  }
  return absl::NotFoundError(
      "no C++ compiler to link kernels.so (tried clang++-22, c++, g++; set "
      "SYNTH_LINK_CXX)");
}

absl::Status linkSharedObject(const std::vector<std::string> &objects,
                              const std::string &output,
                              const std::string &logPath) {
  absl::StatusOr<std::string> linker = findLinker();
  if (!linker.ok()) {
    return linker.status();
  }
  std::string command =
      absl::StrCat(*linker, " -shared -o ", shellQuote(output));
  for (const std::string &object : objects) {
    absl::StrAppend(&command, " ", shellQuote(object));
  }
  absl::StrAppend(&command, " -lpthread -ldl -lm > ", shellQuote(logPath),
                  " 2>&1");
  if (std::system(command.c_str()) != 0) {
    std::ifstream log(logPath);
    std::stringstream text;
    text << log.rdbuf();
    return absl::InternalError(
        absl::StrCat("linking kernels.so failed: ", command, "\n", text.str()));
  }
  return absl::OkStatus();
}

/// The execution plan of one entry function.
absl::StatusOr<rt::EntryInfo> planEntry(func::FuncOp func,
                                        std::vector<KernelSpec> &kernels) {
  rt::EntryInfo entry;
  entry.name = func.getSymName().str();
  DenseMap<Value, int64_t> bufferOf;
  auto addBuffer = [&](Value v, rt::BufferInfo info) -> absl::Status {
    absl::StatusOr<TensorSpec> tensor = describeTensor(v.getType());
    if (!tensor.ok()) {
      return tensor.status();
    }
    info.shape = tensor->shape;
    info.dtype = dtypeOf(tensor->type);
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
  if (auto bytes = func->getAttrOfType<IntegerAttr>("synth.arena_bytes")) {
    entry.arenaBytes = bytes.getInt();
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("function @", entry.name,
                     " has no memory plan (run synth-plan-memory)"));
  }
  Operation *terminator = func.getBody().front().getTerminator();
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
    absl::StatusOr<KernelSpec> spec = describeKernel(kernel);
    if (!spec.ok()) {
      return spec.status();
    }
    rt::CallInfo call;
    call.kernel = spec->name;
    // A kernel that reads only parameters (and values derived from them)
    // computes the same result on every run: run it once per parameter
    // binding and keep its results (derived buffers) instead.
    call.once = true;
    for (Value input : kernel.getInputs()) {
      call.buffers.push_back(bufferOf.lookup(input));
      rt::Storage storage = entry.buffers[call.buffers.back()].storage;
      call.once &=
          storage == rt::Storage::Param || storage == rt::Storage::Derived;
    }
    for (auto [i, result] : llvm::enumerate(kernel.getResults())) {
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
    call.flops = kernelFlops(*spec);
    for (int64_t b : call.buffers) {
      call.bytes += entry.buffers[b].byteSize();
    }
    entry.calls.push_back(call);
    kernels.push_back(std::move(*spec));
  }
  // Outputs are named by the functions' synth.output result attributes.
  for (auto [i, v] : llvm::enumerate(terminator->getOperands())) {
    auto name = func.getResultAttrOfType<StringAttr>(i, "synth.output");
    std::string fallback = entry.name == "loss" ? "loss" : "logits";
    if (i > 0) {
      fallback = absl::StrCat("output", i);
    }
    entry.outputs.push_back({name ? name.str() : fallback, bufferOf.lookup(v)});
  }
  return entry;
}

/// Target feature names of a Halide target string, without arch/os/bits.
std::vector<std::string> featuresOf(const std::string &target) {
  std::vector<std::string> features;
  std::stringstream stream(target);
  std::string part;
  int index = 0;
  while (std::getline(stream, part, '-')) {
    if (index++ >= 3) {
      features.push_back(part);
    }
  }
  return features;
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

} // namespace

absl::Status writeCpuArtifact(ModuleOp module,
                              const std::vector<ParamInfo> &table,
                              uint64_t seed,
                              const CpuArtifactOptions &options) {
  std::error_code error;
  fs::create_directories(options.output, error);
  if (error) {
    return absl::PermissionDeniedError(absl::StrCat(
        options.output, ": cannot create directory: ", error.message()));
  }
  std::string objDir = (fs::path(options.output) / "obj").string();
  fs::create_directories(objDir, error);

  rt::Manifest manifest;
  manifest.model = options.model;
  std::vector<std::string> targets =
      options.hostOnly ? std::vector<std::string>{hostTarget()}
                       : portableTargets();
  manifest.target.kind = "cpu";
  manifest.target.arch = "x86-64";
  manifest.target.variants = targets;
  manifest.target.requiredFeatures = featuresOf(targets.back());
  for (const ParamInfo &p : table) {
    manifest.parameters.push_back({p.name, p.shape, DType::F32, p.trainable});
  }

  std::vector<KernelSpec> kernels;
  for (func::FuncOp func : module.getOps<func::FuncOp>()) {
    absl::StatusOr<rt::EntryInfo> entry = planEntry(func, kernels);
    if (!entry.ok()) {
      return entry.status();
    }
    manifest.entries.push_back(std::move(*entry));
  }

  // Compile every kernel, then the runtime, and link.
  std::vector<std::string> objects;
  for (const KernelSpec &kernel : kernels) {
    absl::StatusOr<std::vector<std::string>> compiled = compileKernel(
        kernel, targets, (fs::path(objDir) / kernel.name).string());
    if (!compiled.ok()) {
      return compiled.status();
    }
    objects.insert(objects.end(), compiled->begin(), compiled->end());
  }
  std::string runtimeObject = (fs::path(objDir) / "halide_runtime.o").string();
  if (absl::Status s = compileRuntime(targets, runtimeObject); !s.ok()) {
    return s;
  }
  objects.push_back(runtimeObject);
  std::string soPath = (fs::path(options.output) / "kernels.so").string();
  if (absl::Status s = linkSharedObject(
          objects, soPath, (fs::path(objDir) / "link.log").string());
      !s.ok()) {
    return s;
  }

  std::string weightsPath =
      (fs::path(options.output) / "weights.safetensors").string();
  safetensors::File weights = initializeParameters(table, seed);
  weights.metadata.push_back({"format", "synthc-weights"});
  weights.metadata.push_back({"seed", std::to_string(seed)});
  if (absl::Status s = safetensors::write(weightsPath, weights); !s.ok()) {
    return s;
  }

  for (const char *name : {"kernels.so", "weights.safetensors"}) {
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
  if (absl::Status s = writeFile(manifestPath, rt::serializeManifest(manifest));
      !s.ok()) {
    return s;
  }
  if (!options.keepObjects) {
    fs::remove_all(objDir, error);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> emitHalideStatements(ModuleOp module,
                                                 bool hostOnly) {
  std::string target = hostOnly ? hostTarget() : portableTargets().front();
  std::string out;
  for (func::FuncOp func : module.getOps<func::FuncOp>()) {
    for (auto kernel : func.getOps<mlir::synth::KernelOp>()) {
      absl::StatusOr<KernelSpec> spec = describeKernel(kernel);
      if (!spec.ok()) {
        return spec.status();
      }
      absl::StatusOr<std::string> stmt = loweredStatement(*spec, target);
      if (!stmt.ok()) {
        return stmt.status();
      }
      absl::StrAppend(&out, "// kernel ", spec->name, "\n", *stmt, "\n");
    }
  }
  return out;
}

} // namespace synth::cpu
