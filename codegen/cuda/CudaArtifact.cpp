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

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace synth::cuda {

using namespace mlir;
namespace fs = std::filesystem;

namespace {} // namespace

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
  rt::CudaInfo cuda;
  cuda.arch = options.target.arch;
  cuda.precision = options.target.precision;
  for (func::FuncOp func : module.getOps<func::FuncOp>()) {
    if (!isCudaEntry(func.getSymName().str())) {
      cuda.skippedEntries.push_back(func.getSymName().str());
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
  if (options.requireCubin && (!haveToolkit || !options.writeCubin)) {
    return absl::NotFoundError("no CUDA toolkit with ptxas found (set "
                               "CUDA_HOME): cannot write cubins");
  }
  // ptxas per kernel, one process per core at a time (a training step has
  // hundreds of kernels).
  std::vector<absl::StatusOr<std::string>> cubins(
      launches.size(), absl::UnavailableError("no cubin"));
  if (haveToolkit && options.writeCubin) {
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i = next++; i < launches.size(); i = next++) {
        auto found = ptxOf.find(launches[i].name);
        if (found != ptxOf.end()) {
          std::string log;
          cubins[i] = assembleCubin(found->second, options.target, &log);
        }
      }
    };
    size_t count = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> workers;
    for (size_t t = 1; t < std::min(count, launches.size()); ++t) {
      workers.emplace_back(worker);
    }
    worker();
    for (std::thread &t : workers) {
      t.join();
    }
  }

  std::vector<std::string> files;
  for (size_t i = 0; i < launches.size(); ++i) {
    const LaunchInfo &launch = launches[i];
    auto found = ptxOf.find(launch.name);
    if (found == ptxOf.end()) {
      return absl::InternalError(
          absl::StrCat("CUDA back end: no PTX for kernel ", launch.name));
    }
    rt::CudaKernelInfo kernel;
    kernel.name = launch.name;
    kernel.entry = launch.name;
    std::string ptxName = launch.name + ".ptx";
    if (absl::Status s = writeFileAtomic(
            (fs::path(options.output) / ptxName).string(), found->second);
        !s.ok()) {
      return s;
    }
    files.push_back(ptxName);
    kernel.ptx = ptxName;
    if (haveToolkit && options.writeCubin) {
      const absl::StatusOr<std::string> &cubin = cubins[i];
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
      kernel.cubin = cubinName;
    }
    kernel.grid = launch.grid;
    kernel.block = launch.block;
    kernel.sharedBytes = launch.sharedBytes;
    kernel.anchor = launch.anchor;
    cuda.kernels.push_back(std::move(kernel));
  }
  manifest.cuda = std::move(cuda);

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
  // Written by the runtime's serializer from the manifest just validated: the
  // compiler cannot write a "cuda" key the runtime would refuse.
  return writeFileAtomic(manifestPath, rt::serializeManifest(manifest));
}

} // namespace synth::cuda
