//===- synthc.cpp - the synthc compiler driver ----------------------------===//
//
//   synthc MODEL.json --emit=synth|kernels|halide|schedule [--batch=B]
//   [--seq-len=N] synthc MODEL.json --emit=gpu|nvvm|ptx
//   [--gpu-arch=sm_80|sm_90a] synthc MODEL.json --target=cpu
//   [--cpu=portable|host] [--schedule=FILE] -o model.synth synthc MODEL.json
//   --target=cuda [--gpu-arch=sm_80|sm_90a] -o model.synth synthc MODEL.json
//   --emit=weights -o FILE.safetensors synthc --stats MODEL.json [--seq-len=N]
//
// Reads and validates a model description, then prints its synth IR (as
// built, or after the CPU kernel pipeline), the kernels' lowered Halide
// statements or the CUDA back end's stages, compiles an artifact, writes
// initial weights, or prints the parameter table and FLOPs. Errors go to stderr
// with exit code 1 (bad input) or 2 (bad command line).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuArtifact.h"
#include "codegen/cpu/ScheduleFile.h"
#include "codegen/cuda/CudaArtifact.h"
#include "frontend/ModelBuilder.h"
#include "frontend/ModelConfig.h"
#include "frontend/Parameters.h"
#include "frontend/Stats.h"
#include "passes/CpuSchedule.h"
#include "passes/Passes.h"
#include "runtime/FileUtil.h"
#include "runtime/Json.h"
#include "runtime/Safetensors.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

namespace {

constexpr const char *kUsage = R"(usage:
  synthc MODEL.json [--emit=synth|kernels|halide|schedule] [--batch=B] [--seq-len=N] [--src-len=S] [--tgt-len=T] [-o FILE]
  synthc MODEL.json --emit=gpu|nvvm|ptx [--gpu-arch=sm_80|sm_90a] [--batch=B] [--seq-len=N] [-o FILE]
  synthc MODEL.json --target=cpu [--cpu=portable|host] [--schedule=FILE] [--no-fuse=LIST] [--batch=B] [--seq-len=N] -o model.synth
  synthc MODEL.json --target=cuda [--gpu-arch=sm_80|sm_90a] [--ptx-only] [--batch=B] [--seq-len=N] -o model.synth
  synthc MODEL.json --emit=weights -o FILE.safetensors
  synthc --stats MODEL.json [--seq-len=N]

  --emit=synth     print the model's synth IR (functions `forward` and `loss`; with --train or --gradients,
                   after attention fusion, with `gradients` and `train_step`); the default
  --emit=kernels   print the IR after the CPU kernel pipeline (fusion, kernels, memory plan)
  --emit=halide    print every kernel's lowered Halide statement
  --emit=schedule  write every kernel's CPU schedule (per target class) as a schedule file (docs/schedules.md)
  --schedule=FILE  apply a schedule file (edited from --emit=schedule, or written by synth-tune) to the CPU kernels
  --no-fuse=LIST   skip fusions (comma list, repeatable; docs/schedules.md): attention (score ops, softmax and the
                   value product as separate kernels; forward entries only, no --train/--gradients; CPU only),
                   elementwise (every bias, activation, residual and head layout op a kernel of its own),
                   projections (linears of one input, e.g. Q, K and V, as separate kernels), prologue (a layer
                   norm as a kernel of its own, not the prologue of the linear it feeds); CUDA targets always
                   build these two unfused
  --cpu-scheduler=S  who schedules the CPU kernels: explicit (the schedule fields, default), or one of Halide's
                   autoschedulers adams2019, li2018, mullapudi2016 (plugins of Debian's libhalide14-1); a schedule
                   file's "scheduler" entries override it per kernel
  --emit=gpu       print the CUDA back end's kernels in the gpu dialect (one gpu.module per kernel)
  --emit=nvvm      print them lowered to the NVVM and LLVM dialects
  --emit=ptx       print every kernel's PTX
  --emit=weights   write the initial weights (from the description's seed) as safetensors
  --target=cpu     compile an artifact directory (manifest.json, kernels.so, weights.safetensors)
  --target=cuda    compile a CUDA artifact (manifest.json, PTX and, with ptxas, cubin per kernel, weights)
  --gpu-arch=A     the GPU for --target=cuda and --emit=gpu|nvvm|ptx: sm_80 or sm_90a (default)
  --gpu-precision=P  linear kernels on the GPU: f32 (default, CUDA cores), bf16 or f16 (tensor cores, f32 accumulate)
  --ptx-only       --target=cuda without cubins (no ptxas; the driver compiles the PTX when it loads the artifact)
  --cpu=portable   kernels for AVX-512, AVX2 and SSE4.1 with run-time dispatch (default); --cpu=host: this machine only
  --stats          print every parameter tensor, the totals and FLOPs per token
  --batch=B        batch size of the generated functions (default 1)
  --seq-len=N      sequence length (default: the model's max_len)
  --src-len=S, --tgt-len=T   seq2seq source and target lengths (default: --seq-len)
  --train          also build the `train_step` entry: gradients + AdamW, parameters and moments updated in place
  --gradients      also build the `gradients` entry (the loss and every trainable parameter's gradient)
  --lr=X, --warmup-steps=N, --final-lr-ratio=X, --weight-decay=X, --max-grad-norm=X, --beta1=X, --beta2=X
                   the optimizer of --train (defaults 1e-3, 100, 0.1, 0.01, 1.0, 0.9, 0.98)
  -o FILE          output file (default: stdout for IR; required for weights)
)";

struct Options {
  std::string model;
  std::string emit = "synth";
  std::string target;
  std::string gpuArch = "sm_90a";
  std::string gpuPrecision = "f32";
  std::string scheduleFile;
  std::string cpuScheduler;
  mlir::synth::FusionOptions fusion;
  bool hostOnly = false;
  bool ptxOnly = false;
  bool stats = false;
  mlir::synth::TrainingPipelineOptions training;
  std::string output;
  synth::ShapeOptions shapes;
};

int usageError(const std::string &message) {
  std::cerr << "synthc: " << message << "\n" << kUsage;
  return 2;
}

/// Parses a positive integer flag value; nullopt on junk.
std::optional<int64_t> parsePositive(const std::string &text) {
  if (text.empty() || text.size() > 12) {
    return std::nullopt;
  }
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  if (value <= 0) {
    return std::nullopt;
  }
  return value;
}

/// Returns 0 on success, else the exit code after printing the error.
int parseOptions(int argc, char **argv, Options &options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string &flag) -> std::optional<std::string> {
      if (arg.rfind(flag + "=", 0) == 0) {
        return arg.substr(flag.size() + 1);
      }
      if (arg == flag && i + 1 < argc) {
        return std::string(argv[++i]);
      }
      return std::nullopt;
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (arg == "--stats") {
      options.stats = true;
      continue;
    }
    if (arg == "-o") {
      if (i + 1 >= argc) {
        return usageError("-o needs a file name");
      }
      options.output = argv[++i];
      continue;
    }
    if (auto emit = value("--emit")) {
      if (*emit != "synth" && *emit != "weights" && *emit != "kernels" &&
          *emit != "halide" && *emit != "schedule" && *emit != "gpu" &&
          *emit != "nvvm" && *emit != "ptx") {
        return usageError("unknown --emit=" + *emit +
                          " (expected synth, kernels, halide, schedule, gpu, "
                          "nvvm, ptx or weights)");
      }
      options.emit = *emit;
      continue;
    }
    if (auto scheduler = value("--cpu-scheduler")) {
      if (*scheduler != "explicit" &&
          !synth::sched::isAutoscheduler(*scheduler)) {
        return usageError("unknown --cpu-scheduler=" + *scheduler +
                          " (expected explicit, adams2019, li2018 or "
                          "mullapudi2016)");
      }
      options.cpuScheduler = *scheduler;
      continue;
    }
    if (auto file = value("--schedule")) {
      if (file->empty()) {
        return usageError("--schedule needs a file name");
      }
      options.scheduleFile = *file;
      continue;
    }
    if (auto target = value("--target")) {
      if (*target != "cpu" && *target != "cuda") {
        return usageError("unknown --target=" + *target +
                          " (expected cpu or cuda)");
      }
      options.target = *target;
      continue;
    }
    if (auto arch = value("--gpu-arch")) {
      if (!synth::cuda::isSupportedArch(*arch)) {
        return usageError("unknown --gpu-arch=" + *arch + " (expected " +
                          synth::cuda::supportedArchs() + ")");
      }
      options.gpuArch = *arch;
      continue;
    }
    if (auto precision = value("--gpu-precision")) {
      if (!synth::cuda::isSupportedPrecision(*precision)) {
        return usageError("unknown --gpu-precision=" + *precision +
                          " (expected " + synth::cuda::supportedPrecisions() +
                          ")");
      }
      options.gpuPrecision = *precision;
      continue;
    }
    if (auto cpu = value("--cpu")) {
      if (*cpu != "portable" && *cpu != "host") {
        return usageError("unknown --cpu=" + *cpu +
                          " (expected portable or host)");
      }
      options.hostOnly = *cpu == "host";
      continue;
    }
    if (arg == "--ptx-only") {
      options.ptxOnly = true;
      continue;
    }
    if (arg == "--train") {
      options.training.trainStep = true;
      continue;
    }
    if (arg == "--gradients") {
      options.training.gradients = true;
      continue;
    }
    if (auto names = value("--no-fuse")) {
      if (std::optional<std::string> error =
              mlir::synth::disableFusions(*names, options.fusion)) {
        return usageError("--no-fuse: " + *error);
      }
      continue;
    }
    mlir::synth::OptimizerOptions &opt = options.training.optimizer;
    bool matched = false;
    for (auto [flag, target] :
         {std::pair<const char *, double *>{"--lr", &opt.learningRate},
          {"--final-lr-ratio", &opt.finalRatio},
          {"--weight-decay", &opt.weightDecay},
          {"--max-grad-norm", &opt.maxGradNorm},
          {"--beta1", &opt.beta1},
          {"--beta2", &opt.beta2}}) {
      if (auto text = value(flag)) {
        char *end = nullptr;
        double number = std::strtod(text->c_str(), &end);
        if (text->empty() || *end != '\0' || !std::isfinite(number) ||
            number < 0) {
          return usageError(std::string(flag) +
                            " expects a non-negative number, got '" + *text +
                            "'");
        }
        *target = number;
        matched = true;
        break;
      }
    }
    if (matched) {
      continue;
    }
    if (auto text = value("--warmup-steps")) {
      std::optional<int64_t> number =
          *text == "0" ? std::optional<int64_t>(0) : parsePositive(*text);
      if (!number) {
        return usageError("--warmup-steps expects an integer >= 0, got '" +
                          *text + "'");
      }
      opt.warmupSteps = *number;
      continue;
    }
    for (auto [flag, target] :
         {std::pair<const char *, int64_t *>{"--batch", &options.shapes.batch},
          {"--seq-len", &options.shapes.seqLen},
          {"--src-len", &options.shapes.srcLen},
          {"--tgt-len", &options.shapes.tgtLen}}) {
      if (auto text = value(flag)) {
        std::optional<int64_t> number = parsePositive(*text);
        if (!number) {
          return usageError(std::string(flag) +
                            " expects a positive integer, got '" + *text + "'");
        }
        *target = *number;
        matched = true;
        break;
      }
    }
    if (matched) {
      continue;
    }
    if (!arg.empty() && arg[0] == '-') {
      return usageError("unknown option '" + arg + "'");
    }
    if (!options.model.empty()) {
      return usageError("more than one model description given ('" +
                        options.model + "' and '" + arg + "')");
    }
    options.model = arg;
  }
  if (options.model.empty()) {
    return usageError("no model description given");
  }
  if (options.emit == "weights" && options.output.empty() && !options.stats) {
    return usageError("--emit=weights needs -o FILE.safetensors");
  }
  if (!options.target.empty() && options.output.empty()) {
    return usageError("--target=" + options.target +
                      " needs -o DIRECTORY (the artifact)");
  }
  const mlir::synth::FusionOptions &fusion = options.fusion;
  if (!fusion.attention || !fusion.elementwise || !fusion.projections ||
      !fusion.prologue) {
    bool cuda = options.target == "cuda" || options.emit == "gpu" ||
                options.emit == "nvvm" || options.emit == "ptx";
    if (options.stats || options.emit == "weights" ||
        (options.emit == "synth" && options.target.empty())) {
      return usageError("--no-fuse changes the kernels: use it with "
                        "--target or --emit=kernels|halide|schedule");
    }
    if (!fusion.attention && cuda) {
      return usageError(
          "--no-fuse=attention: the CUDA back end has kernels for the fused "
          "attention only, not for standalone score ops and synth.attend; "
          "use it with --target=cpu or --emit=kernels|halide|schedule");
    }
    if (!fusion.attention &&
        (options.training.gradients || options.training.trainStep)) {
      return usageError(
          "--no-fuse=attention cannot be combined with --train or "
          "--gradients: the backward pass (synth-autodiff) is built for "
          "fused attention only (synth.fused_attention and its flash-style "
          "gradients); unfused attention runs the forward entries");
    }
  }
  return 0;
}

int fail(const std::string &message) {
  std::cerr << "synthc: error: " << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  if (int code = parseOptions(argc, argv, options)) {
    return code;
  }
  absl::StatusOr<synth::ModelConfig> config =
      synth::loadModelConfig(options.model);
  if (!config.ok()) {
    return fail(std::string(config.status().message()));
  }
  std::vector<synth::ParamInfo> table = synth::parameterTable(*config);

  if (options.stats) {
    int64_t n = options.shapes.seqLen ? options.shapes.seqLen : config->maxLen;
    if (n > config->maxLen) {
      return fail(
          "sequence length N = " + std::to_string(n) +
          " exceeds the model's max_len L = " + std::to_string(config->maxLen));
    }
    std::cout << synth::formatStats(*config, table, n);
    return 0;
  }

  if (options.emit == "weights") {
    synth::safetensors::File weights =
        synth::initializeParameters(table, config->seed);
    weights.metadata.push_back({"format", "synthc-weights"});
    weights.metadata.push_back({"model", options.model});
    weights.metadata.push_back({"seed", std::to_string(config->seed)});
    absl::Status written = synth::safetensors::write(options.output, weights);
    if (!written.ok()) {
      return fail(std::string(written.message()));
    }
    return 0;
  }

  mlir::MLIRContext context;
  auto module = synth::buildModelModule(context, *config, options.shapes);
  if (!module.ok()) {
    return fail(options.model + ": " + std::string(module.status().message()));
  }
  bool cudaStage =
      options.emit == "gpu" || options.emit == "nvvm" || options.emit == "ptx";
  bool kernels = options.emit == "kernels" || options.emit == "halide" ||
                 options.emit == "schedule" || cudaStage ||
                 !options.target.empty();
  if (!options.scheduleFile.empty() &&
      (cudaStage || options.target == "cuda" || !kernels)) {
    return usageError("--schedule applies to CPU kernels: use it with "
                      "--target=cpu or --emit=kernels|halide|schedule");
  }
  if (!options.cpuScheduler.empty() &&
      (cudaStage || options.target == "cuda" || !kernels)) {
    return usageError("--cpu-scheduler applies to CPU kernels: use it with "
                      "--target=cpu or --emit=kernels|halide|schedule");
  }
  bool training = options.training.gradients || options.training.trainStep;
  if (!kernels && training) {
    // --emit=synth with --train/--gradients: the training functions as synth
    // IR, before kernel formation.
    mlir::PassManager pm(&context);
    mlir::synth::buildTrainingPipeline(pm, options.training, options.fusion);
    if (mlir::failed(pm.run(**module))) {
      return fail(options.model + ": building the training functions failed");
    }
  }
  if (kernels) {
    mlir::PassManager pm(&context);
    mlir::synth::FusionOptions fusion = options.fusion;
    if (cudaStage || options.target == "cuda") {
      // The CUDA back end lowers one linear per kernel, without a prologue.
      fusion.projections = false;
      fusion.prologue = false;
    }
    mlir::synth::buildCpuKernelPipeline(
        pm, options.training, synth::cpu::scheduleClasses(options.hostOnly),
        fusion);
    if (mlir::failed(pm.run(**module))) {
      return fail(options.model + ": the CPU kernel pipeline failed");
    }
    if (!options.cpuScheduler.empty()) {
      absl::Status used =
          synth::cpu::useScheduler(**module, options.cpuScheduler);
      if (!used.ok()) {
        return fail(std::string(used.message()));
      }
    }
    if (!options.scheduleFile.empty()) {
      absl::StatusOr<std::string> text =
          synth::readFileBytes(options.scheduleFile);
      absl::StatusOr<synth::json::Value> file =
          text.ok() ? synth::json::parse(*text, options.scheduleFile)
                    : absl::StatusOr<synth::json::Value>(text.status());
      if (!file.ok()) {
        return fail(std::string(file.status().message()));
      }
      absl::Status applied =
          synth::cpu::applySchedules(**module, *file, options.scheduleFile);
      if (!applied.ok()) {
        return fail(std::string(applied.message()));
      }
    }
  }
  if (!options.target.empty()) {
    absl::StatusOr<std::string> text = synth::readFileBytes(options.model);
    absl::StatusOr<synth::json::Value> description =
        text.ok() ? synth::json::parse(*text, options.model)
                  : absl::StatusOr<synth::json::Value>(text.status());
    if (!description.ok()) {
      return fail(std::string(description.status().message()));
    }
    if (options.target == "cuda") {
      synth::cuda::CudaArtifactOptions artifact;
      artifact.output = options.output;
      artifact.target.arch = options.gpuArch;
      artifact.target.precision = options.gpuPrecision;
      artifact.writeCubin = !options.ptxOnly;
      artifact.model = *description;
      absl::Status written = synth::cuda::writeCudaArtifact(
          **module, table, config->seed, artifact);
      if (!written.ok()) {
        return fail(std::string(written.message()));
      }
      return 0;
    }
    synth::cpu::CpuArtifactOptions artifact;
    artifact.output = options.output;
    artifact.hostOnly = options.hostOnly;
    artifact.model = *description;
    std::vector<std::string> notes;
    artifact.notes = &notes;
    absl::Status written =
        synth::cpu::writeCpuArtifact(**module, table, config->seed, artifact);
    for (const std::string &note : notes) {
      std::cerr << "synthc: note: " << note << "\n";
    }
    if (!written.ok()) {
      return fail(std::string(written.message()));
    }
    return 0;
  }
  std::string text;
  if (options.emit == "schedule") {
    text = synth::json::serialize(synth::cpu::exportSchedules(**module),
                                  /*pretty=*/true) +
           "\n";
  } else if (options.emit == "halide") {
    absl::StatusOr<std::string> statements =
        synth::cpu::emitHalideStatements(**module, options.hostOnly);
    if (!statements.ok()) {
      return fail(std::string(statements.status().message()));
    }
    text = *statements;
  } else if (cudaStage) {
    synth::cuda::CudaTarget target;
    target.arch = options.gpuArch;
    target.precision = options.gpuPrecision;
    absl::StatusOr<std::string> stage =
        synth::cuda::emitCudaStage(**module, options.emit, target);
    if (!stage.ok()) {
      return fail(std::string(stage.status().message()));
    }
    text = *stage;
  } else {
    llvm::raw_string_ostream os(text);
    (**module)->print(os);
    os << "\n";
  }
  if (options.output.empty() || options.output == "-") {
    llvm::outs() << text;
    return 0;
  }
  std::error_code error;
  llvm::raw_fd_ostream out(options.output, error);
  if (error) {
    return fail(options.output + ": cannot write: " + error.message());
  }
  out << text;
  return 0;
}
