//===- CpuArtifact.cpp - kernels of a module -> a CPU artifact ------------===//
//
// The plan of each entry function comes from codegen/ExecutionPlan. Kernels
// are compiled once per target variant; Halide's runtime is compiled once; the
// system C++ compiler links them into kernels.so.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuArtifact.h"
#include "codegen/cpu/ScheduleFile.h"

#include "codegen/ExecutionPlan.h"

#include "codegen/cpu/HalideKernels.h"
#include "codegen/cpu/KernelSpecFromIR.h"
#include "dialect/SynthOps.h"
#include "frontend/Parameters.h"
#include "passes/KernelUtils.h"
#include "runtime/FileUtil.h"
#include "runtime/Manifest.h"
#include "runtime/Safetensors.h"
#include "runtime/Sha256.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace synth::cpu {

using namespace mlir;
namespace fs = std::filesystem;

namespace {

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

/// What decides a kernel's code: the kernel op printed (its body, operand
/// and result types and attributes, the schedule among them) with its name
/// taken out.
std::string kernelIdentity(mlir::synth::KernelOp kernel,
                           const std::string &name) {
  std::string text;
  llvm::raw_string_ostream os(text);
  kernel->print(os, mlir::OpPrintingFlags().useLocalScope());
  os.flush();
  const std::string quoted = "\"" + name + "\"";
  for (size_t at = text.find(quoted); at != std::string::npos;
       at = text.find(quoted, at)) {
    text.replace(at, quoted.size(), "\"\"");
  }
  return text;
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
  std::vector<mlir::synth::KernelOp> kernelOps;
  for (func::FuncOp func : module.getOps<func::FuncOp>()) {
    absl::StatusOr<rt::EntryInfo> entry = codegen::planEntry(func);
    if (!entry.ok()) {
      return entry.status();
    }
    manifest.entries.push_back(std::move(*entry));
    for (auto kernel : func.getOps<mlir::synth::KernelOp>()) {
      absl::StatusOr<KernelSpec> spec = describeKernel(kernel);
      if (!spec.ok()) {
        return spec.status();
      }
      kernels.push_back(std::move(*spec));
      kernelOps.push_back(kernel);
    }
  }

  // Compile every distinct kernel, then the runtime, and link. Entries
  // repeat kernels (gradients and train_step recompute the forward): a kernel
  // identical to an earlier one but for its name is compiled once, and its
  // name becomes an alias of the earlier one's symbol in kernels.so.
  std::vector<std::string> objects;
  std::map<std::string, size_t> firstWithText;
  std::vector<std::pair<std::string, std::string>> aliases;
  std::vector<std::string> fallbacks(kernels.size());
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelSpec &kernel = kernels[i];
    auto [first, inserted] =
        firstWithText.emplace(kernelIdentity(kernelOps[i], kernel.name), i);
    if (!inserted) {
      aliases.emplace_back(kernel.name, kernels[first->second].name);
      if (!fallbacks[first->second].empty()) {
        mlir::synth::setCpuScheduler(kernelOps[i], "");
      }
      continue;
    }
    std::string &fallback = fallbacks[i];
    absl::StatusOr<std::vector<std::string>> compiled = compileKernel(
        kernel, targets, (fs::path(objDir) / kernel.name).string(), &fallback);
    if (!compiled.ok()) {
      return compiled.status();
    }
    if (!fallback.empty()) {
      // The manifest records what the kernel was built with.
      mlir::synth::setCpuScheduler(kernelOps[i], "");
      if (options.notes) {
        options.notes->push_back(
            absl::StrCat("kernel ", kernel.name, ": the ", kernel.scheduler,
                         " autoscheduler gave up on it (",
                         fallback.substr(0, fallback.find('\n')),
                         "); it keeps its explicit schedule"));
      }
    }
    objects.insert(objects.end(), compiled->begin(), compiled->end());
  }
  manifest.schedule = exportSchedules(module);
  std::string runtimeObject = (fs::path(objDir) / "halide_runtime.o").string();
  if (absl::Status s = compileRuntime(targets, runtimeObject); !s.ok()) {
    return s;
  }
  objects.push_back(runtimeObject);
  if (!aliases.empty()) {
    // An implicit linker script of symbol assignments (GNU ld and lld).
    std::string script = (fs::path(objDir) / "aliases.ld").string();
    std::string text;
    for (const auto &[alias, target] : aliases) {
      absl::StrAppend(&text, alias, " = ", target, ";\n");
    }
    if (absl::Status s = writeFileAtomic(script, text); !s.ok()) {
      return s;
    }
    objects.push_back(script);
  }
  std::string soPath = (fs::path(options.output) / "kernels.so").string();
  if (absl::Status s = linkSharedObject(
          objects, soPath, (fs::path(objDir) / "link.log").string());
      !s.ok()) {
    return s;
  }

  if (absl::Status s =
          codegen::writeInitialWeights(options.output, table, seed);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = codegen::recordFiles(
          manifest, options.output, {"kernels.so", "weights.safetensors"});
      !s.ok()) {
    return s;
  }
  std::string manifestPath =
      (fs::path(options.output) / "manifest.json").string();
  if (absl::Status s = rt::validateManifest(manifest, manifestPath); !s.ok()) {
    return absl::InternalError(absl::StrCat(
        "the compiler produced an invalid manifest: ", s.message()));
  }
  if (absl::Status s =
          writeFileAtomic(manifestPath, rt::serializeManifest(manifest));
      !s.ok()) {
    return s;
  }
  if (!options.keepObjects) {
    fs::remove_all(objDir, error);
  }
  return absl::OkStatus();
}

std::vector<std::string> scheduleClasses(bool hostOnly) {
  std::vector<std::string> classes;
  for (const std::string &target :
       hostOnly ? std::vector<std::string>{hostTarget()} : portableTargets()) {
    classes.push_back(sched::isaOfHalideTarget(target).name);
  }
  return classes;
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
