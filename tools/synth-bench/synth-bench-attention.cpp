//===- synth-bench-attention.cpp - time synthc's fused attention kernel ---===//
//
//   synth-bench-attention --variant V --seq-len N [--batch 8] [--heads 8]
//       [--head-dim 64] [--threads 2] [--reps 10] [--warmup 2] [--causal]
//       [--cpu=host|portable] [--dump FILE.safetensors] [--workdir DIR]
//
// Builds one function around a synth.fused_attention of variant V (dot,
// dense, random, fixed_random, factorized_random, factorized_dense,
// random_dot, dense_dot, random_dense) on [batch, heads, N, head_dim] values,
// compiles it through the same pipeline and back end as synthc, runs it with
// libsynthrt on seeded random inputs, and prints one JSON line: the median,
// min and max milliseconds over the repetitions, and GFLOP/s. --dump writes
// the inputs and the output so that another implementation (the PyTorch
// benchmark) can check the result before its time is trusted.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CpuArtifact.h"
#include "codegen/cpu/HalideKernels.h"
#include "codegen/cpu/ScheduleFile.h"
#include "dialect/SynthDialect.h"
#include "dialect/SynthOps.h"
#include "frontend/Parameters.h"
#include "passes/Passes.h"
#include "runtime/Artifact.h"
#include "runtime/Executor.h"
#include "runtime/FileUtil.h"
#include "runtime/Safetensors.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using namespace mlir;
namespace fs = std::filesystem;

struct Options {
  std::string variant;
  int64_t batch = 8, heads = 8, headDim = 64, seqLen = 0;
  int threads = 2, reps = 10, warmup = 2;
  bool causal = false, hostOnly = true;
  std::string dump, workdir, emitIr, schedule;
};

int usage(const std::string &message) {
  std::fprintf(stderr,
               "synth-bench-attention: %s\nusage: synth-bench-attention "
               "--variant V --seq-len N [--batch B] [--heads H] [--head-dim D] "
               "[--threads T] [--reps R] [--warmup W] [--causal] "
               "[--cpu=host|portable] [--dump FILE] [--workdir DIR] "
               "[--emit-ir FILE.mlir] [--schedule FILE.json]\n",
               message.c_str());
  return 2;
}

/// One named input of the benchmark function.
struct Input {
  std::string name;
  std::vector<int64_t> shape;
};

/// The score parts of a variant and the inputs they read, in operand order.
bool describeVariant(
    const std::string &variant, const Options &o,
    std::vector<std::pair<::synth::cpu::ScoreKind, std::vector<Input>>>
        &parts) {
  int64_t B = o.batch, H = o.heads, N = o.seqLen, d = o.headDim, D = H * d;
  int64_t L = N, k = d;
  auto part = [&](const std::string &kind) -> bool {
    using ::synth::cpu::ScoreKind;
    if (kind == "dot") {
      parts.push_back(
          {ScoreKind::Dot, {{"q", {B, H, N, d}}, {"k", {B, H, N, d}}}});
    } else if (kind == "dense") {
      parts.push_back({ScoreKind::Dense,
                       {{"x", {B, N, D}},
                        {"dense.w1", {H, D, k}},
                        {"dense.b1", {H, k}},
                        {"dense.w2", {H, k, L}},
                        {"dense.b2", {H, L}}}});
    } else if (kind == "random" || kind == "fixed_random") {
      parts.push_back({ScoreKind::Random, {{"random.R", {H, L, L}}}});
    } else if (kind == "factorized_random") {
      parts.push_back({ScoreKind::FactorizedRandom,
                       {{"fr.R1", {H, L, 8}}, {"fr.R2", {H, L, 8}}}});
    } else if (kind == "factorized_dense") {
      int64_t a = 1;
      while (a * a < L) {
        a *= 2;
      }
      int64_t b = L / a;
      if (a * b != L) {
        return false;
      }
      parts.push_back({ScoreKind::FactorizedDense,
                       {{"x", {B, N, D}},
                        {"fd.w1", {H, D, k}},
                        {"fd.b1", {H, k}},
                        {"fd.wa", {H, k, a}},
                        {"fd.ba", {H, a}},
                        {"fd.wb", {H, k, b}},
                        {"fd.bb", {H, b}}}});
    } else {
      return false;
    }
    return true;
  };
  if (variant == "random_dot") {
    return part("random") && part("dot");
  }
  if (variant == "dense_dot") {
    return part("dense") && part("dot");
  }
  if (variant == "random_dense") {
    return part("random") && part("dense");
  }
  return part(variant);
}

mlir::synth::ScoreKind toMlir(::synth::cpu::ScoreKind kind) {
  switch (kind) {
  case ::synth::cpu::ScoreKind::Dot:
    return mlir::synth::ScoreKind::Dot;
  case ::synth::cpu::ScoreKind::Dense:
    return mlir::synth::ScoreKind::Dense;
  case ::synth::cpu::ScoreKind::Random:
    return mlir::synth::ScoreKind::Random;
  case ::synth::cpu::ScoreKind::FactorizedRandom:
    return mlir::synth::ScoreKind::FactorizedRandom;
  case ::synth::cpu::ScoreKind::FactorizedDense:
    return mlir::synth::ScoreKind::FactorizedDense;
  }
  return mlir::synth::ScoreKind::Dot;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      return i + 1 < argc ? std::string(argv[++i]) : std::string();
    };
    if (arg == "--variant") {
      o.variant = next();
    } else if (arg == "--seq-len") {
      o.seqLen = std::atoll(next().c_str());
    } else if (arg == "--batch") {
      o.batch = std::atoll(next().c_str());
    } else if (arg == "--heads") {
      o.heads = std::atoll(next().c_str());
    } else if (arg == "--head-dim") {
      o.headDim = std::atoll(next().c_str());
    } else if (arg == "--threads") {
      o.threads = std::atoi(next().c_str());
    } else if (arg == "--reps") {
      o.reps = std::atoi(next().c_str());
    } else if (arg == "--warmup") {
      o.warmup = std::atoi(next().c_str());
    } else if (arg == "--causal") {
      o.causal = true;
    } else if (arg == "--cpu=host") {
      o.hostOnly = true;
    } else if (arg == "--cpu=portable") {
      o.hostOnly = false;
    } else if (arg == "--dump") {
      o.dump = next();
    } else if (arg == "--workdir") {
      o.workdir = next();
    } else if (arg == "--emit-ir") {
      o.emitIr = next();
    } else if (arg == "--schedule") {
      o.schedule = next();
    } else {
      return usage("unknown argument '" + arg + "'");
    }
  }
  if (o.variant.empty() || o.seqLen <= 0 || o.batch <= 0 || o.heads <= 0 ||
      o.headDim <= 0 || o.reps <= 0 || o.threads <= 0) {
    return usage("--variant and positive --seq-len, --batch, --heads, "
                 "--head-dim, --reps, --threads are required");
  }
  std::vector<std::pair<::synth::cpu::ScoreKind, std::vector<Input>>> parts;
  if (!describeVariant(o.variant, o, parts)) {
    return usage("unknown variant '" + o.variant +
                 "' (or N not a product a*b for factorized_dense)");
  }

  // The function: inputs (deduplicated by name), mixture logits, values.
  MLIRContext context;
  context.loadDialect<mlir::synth::SynthDialect, func::FuncDialect,
                      arith::ArithDialect, tensor::TensorDialect>();
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();
  std::vector<Input> inputs;
  auto indexOf = [&](const Input &input) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].name == input.name) {
        return i;
      }
    }
    inputs.push_back(input);
    return inputs.size() - 1;
  };
  std::vector<std::vector<size_t>> partInputs;
  for (auto &[kind, ins] : parts) {
    std::vector<size_t> ids;
    for (const Input &in : ins) {
      ids.push_back(indexOf(in));
    }
    partInputs.push_back(ids);
  }
  size_t logitsIndex =
      parts.size() > 1
          ? indexOf({"mixture.logits", {o.heads, int64_t(parts.size())}})
          : size_t(-1);
  size_t valuesIndex =
      indexOf({"values", {o.batch, o.heads, o.seqLen, o.headDim}});
  auto f32 = b.getF32Type();
  SmallVector<Type> argTypes;
  for (const Input &in : inputs) {
    argTypes.push_back(RankedTensorType::get(in.shape, f32));
  }
  auto resultType =
      RankedTensorType::get({o.batch, o.heads, o.seqLen, o.headDim}, f32);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(b, loc, "forward",
                                   b.getFunctionType(argTypes, resultType));
  Block *body = func.addEntryBlock();
  // Fixed random attention: R is a (non-trainable) parameter, so the
  // compiler computes softmax(R) once per parameter binding.
  const bool fixedRandom = o.variant == "fixed_random";
  auto isParam = [&](const Input &in) {
    return fixedRandom && in.name == "random.R";
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    func.setArgAttr(i, isParam(inputs[i]) ? "synth.param" : "synth.input",
                    b.getStringAttr(inputs[i].name));
  }
  b.setInsertionPointToStart(body);
  SmallVector<Attribute> partAttrs;
  SmallVector<Value> operands;
  for (size_t p = 0; p < parts.size(); ++p) {
    bool dot = parts[p].first == ::synth::cpu::ScoreKind::Dot;
    partAttrs.push_back(mlir::synth::ScorePartAttr::get(
        &context, toMlir(parts[p].first),
        dot ? b.getF32FloatAttr(1.0f / std::sqrt(float(o.headDim)))
            : FloatAttr(),
        dot ? IntegerAttr() : b.getI64IntegerAttr(o.seqLen)));
    for (size_t id : partInputs[p]) {
      operands.push_back(body->getArgument(id));
    }
  }
  Value logits = logitsIndex == size_t(-1)
                     ? Value()
                     : Value(body->getArgument(logitsIndex));
  Value result;
  if (fixedRandom) {
    // Score op + attend, as the frontend writes them: synth-fuse-attention
    // turns fixed random attention into attention_probs + attend_probs.
    auto scores = mlir::synth::RandomScoresOp::create(
        b, loc, RankedTensorType::get({o.heads, o.seqLen, o.seqLen}, f32),
        operands[0], o.seqLen, /*trainable=*/false);
    result = mlir::synth::AttendOp::create(
        b, loc, resultType, scores, body->getArgument(valuesIndex), Value(),
        Value(), o.causal ? b.getUnitAttr() : UnitAttr());
  } else {
    result = mlir::synth::FusedAttentionOp::create(
        b, loc, resultType, b.getArrayAttr(partAttrs), operands, logits,
        body->getArgument(valuesIndex), Value(), Value(),
        o.causal ? b.getUnitAttr() : UnitAttr());
  }
  func::ReturnOp::create(b, loc, result);
  if (failed(verify(*module))) {
    std::fprintf(stderr, "error: the benchmark function failed to verify\n");
    return 1;
  }
  if (!o.emitIr.empty()) {
    // The function as synth IR, for synth-tune (KERNELS.mlir) to search.
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    if (absl::Status s = ::synth::writeFileAtomic(o.emitIr, text); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    return 0;
  }
  PassManager pm(&context);
  mlir::synth::buildCpuKernelPipeline(
      pm, {}, ::synth::cpu::scheduleClasses(o.hostOnly));
  if (failed(pm.run(*module))) {
    std::fprintf(stderr, "error: the kernel pipeline failed\n");
    return 1;
  }
  if (!o.schedule.empty()) {
    absl::StatusOr<std::string> text = ::synth::readFileBytes(o.schedule);
    absl::StatusOr<::synth::json::Value> file =
        text.ok() ? ::synth::json::parse(*text, o.schedule)
                  : absl::StatusOr<::synth::json::Value>(text.status());
    absl::Status applied =
        file.ok() ? ::synth::cpu::applySchedules(*module, *file, o.schedule)
                  : file.status();
    if (!applied.ok()) {
      std::fprintf(stderr, "error: %s\n",
                   std::string(applied.message()).c_str());
      return 1;
    }
  }

  std::string dir = o.workdir.empty()
                        ? (fs::temp_directory_path() /
                           ("synth-bench-" + std::to_string(::getpid())))
                              .string()
                        : o.workdir;
  ::synth::cpu::CpuArtifactOptions options;
  options.output = dir;
  options.hostOnly = o.hostOnly;
  options.model = ::synth::json::Value::object();
  std::vector<::synth::ParamInfo> table;
  for (const Input &in : inputs) {
    if (isParam(in)) {
      table.push_back({in.name, in.shape, /*trainable=*/false,
                       ::synth::InitKind::Uniform, 0.1});
    }
  }
  if (absl::Status s =
          ::synth::cpu::writeCpuArtifact(*module, table, 0, options);
      !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto artifact = ::synth::rt::Artifact::load(dir);
  if (!artifact.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(artifact.status().message()).c_str());
    return 1;
  }
  (void)(*artifact)->setNumThreads(o.threads);
  // Seeded inputs: N(0, 1) for activations, smaller for weights.
  ::synth::safetensors::File dumped;
  auto weights = std::make_shared<::synth::safetensors::File>();
  for (const Input &in : inputs) {
    ::synth::Tensor t = ::synth::Tensor::zeros(::synth::DType::F32, in.shape);
    ::synth::SplitMix64 rng(::synth::fnv1a64(in.name) ^ 12345);
    double scale = in.name == "x" || in.name == "q" || in.name == "k" ||
                           in.name == "values"
                       ? 1.0
                       : 0.2;
    for (int64_t i = 0; i < t.numel(); ++i) {
      t.data<float>()[i] = static_cast<float>(scale * rng.normal());
    }
    if (isParam(in)) {
      weights->add(in.name, t);
    }
    dumped.add("input." + in.name, std::move(t));
  }
  auto session = ::synth::rt::Session::create(**artifact, "forward", weights);
  if (!session.ok()) {
    std::fprintf(stderr, "error: %s\n",
                 std::string(session.status().message()).c_str());
    return 1;
  }
  for (const Input &in : inputs) {
    if (isParam(in)) {
      continue;
    }
    absl::Status s =
        (*session)->setInput(in.name, *dumped.find("input." + in.name));
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  std::vector<double> times;
  for (int r = 0; r < o.warmup + o.reps; ++r) {
    ::synth::rt::RunOptions run;
    run.poisonOutputs = r == 0; // checked once, then timed without the fill
    auto start = std::chrono::steady_clock::now();
    if (absl::Status s = (*session)->run(run); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return 1;
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (r >= o.warmup) {
      times.push_back(seconds);
    }
  }
  std::sort(times.begin(), times.end());
  double median = times[times.size() / 2];
  // FLOPs of the attention itself (for fixed random: the weighted sum the
  // run repeats, 2 B H N N d; softmax(R) is computed once).
  int64_t flops = 0;
  for (const auto &call : (*artifact)->manifest().entries.front().calls) {
    if (!call.once) {
      flops += call.flops;
    }
  }
  if (!o.dump.empty()) {
    auto out = (*session)->output("logits");
    if (out.ok()) {
      dumped.add("output", *out);
    }
    (void)::synth::safetensors::write(o.dump, dumped);
  }
  std::printf("{\"variant\": \"%s\", \"seq_len\": %lld, \"batch\": %lld, "
              "\"heads\": %lld, \"head_dim\": %lld, \"threads\": %d, "
              "\"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
              "\"flops\": %lld, \"gflops\": %.2f}\n",
              o.variant.c_str(), (long long)o.seqLen, (long long)o.batch,
              (long long)o.heads, (long long)o.headDim, o.threads, median * 1e3,
              times.front() * 1e3, times.back() * 1e3, (long long)flops,
              flops / median / 1e9);
  if (o.workdir.empty()) {
    std::error_code error;
    fs::remove_all(dir, error);
  }
  return 0;
}
