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

#include "codegen/ExecutionPlan.h"

#include "dialect/SynthOps.h"
#include "frontend/Parameters.h"
#include "runtime/FileUtil.h"
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
    absl::StatusOr<rt::EntryInfo> entry = codegen::planEntry(func);
    if (!entry.ok()) {
      return entry.status();
    }
    manifest.entries.push_back(std::move(*entry));
  }

  // Stages 1-3 for every kernel at once, then ptxas per kernel.
  registerCudaDialects(*module.getContext());
  std::vector<LaunchInfo> launches;
  absl::StatusOr<OwningOpRef<ModuleOp>> gpuModule =
      lowerKernelsToGpu(module, &launches, options.target.precision);
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
    if (absl::Status s = writeFileAtomic(
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
      if (absl::Status s = writeFileAtomic(
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

  if (absl::Status s =
          codegen::writeInitialWeights(options.output, table, seed);
      !s.ok()) {
    return s;
  }
  files.push_back("weights.safetensors");
  if (absl::Status s = codegen::recordFiles(manifest, options.output, files);
      !s.ok()) {
    return s;
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
  // The linear kernels' precision (f32, or bf16/f16 on tensor cores).
  cuda.set("precision", json::Value::string(options.target.precision));
  document->set("cuda", std::move(cuda));
  return writeFileAtomic(manifestPath, json::serialize(*document, true) + "\n");
}

} // namespace synth::cuda
