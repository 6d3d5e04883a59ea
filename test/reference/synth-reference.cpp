//===- synth-reference.cpp - run the reference on fresh weights and inputs ===//
//
// Draws a model's initial weights and a random batch from one seed, runs the
// reference implementation, and writes everything a cross-check needs into
// one safetensors file: the parameters, the inputs (`input.*`), the logits and
// loss (`ref.*`, F64) and the gradient of every trainable parameter
// (`grad.<name>`, F64). torch_crosscheck.py reads that file.
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelConfig.h"
#include "frontend/Parameters.h"
#include "runtime/Safetensors.h"
#include "test/reference/Reference.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>

using namespace synth;

namespace {

constexpr const char *kUsage =
    "usage: synth-reference MODEL.json [--seed S] [--batch B] [--seq-len N]\n"
    "                       [--src-len S --tgt-len T] [--perturb X] -o "
    "OUT.safetensors\n"
    "\n"
    "  --seed S      weights: initializeParameters(seed S); inputs: "
    "SplitMix64(S + 1)\n"
    "                (default: the model's \"seed\")\n"
    "  --batch B     batch size (default 1)\n"
    "  --seq-len N   sequence length, N <= max_len (default max_len)\n"
    "  --src-len S, --tgt-len T\n"
    "                seq2seq source and target lengths (default N)\n"
    "  --perturb X   add uniform(-X, X) noise (SplitMix64(S + 2)) to every "
    "weight,\n"
    "                so zero biases and mixture logits are exercised (default "
    "0)\n"
    "  -o PATH       the safetensors file to write\n";

/// Exit status for bad flags, a bad model file or inputs the model rejects.
constexpr int kUsageError = 2;
/// The reference is plain loops: anything bigger is a mistake, not a test.
constexpr int64_t kMaxBatch = 4096;

int usageError(const std::string &message) {
  std::fprintf(stderr, "synth-reference: %s\n\n%s", message.c_str(), kUsage);
  return kUsageError;
}

struct Options {
  std::string model;
  std::string output;
  std::optional<uint64_t> seed;
  int64_t batch = 1;
  std::optional<int64_t> seqLen, srcLen, tgtLen;
  double perturb = 0.0;
};

/// Parses argv; returns an error message, or "" on success.
std::string parseOptions(int argc, char **argv, Options &options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.empty() || arg[0] != '-') {
      if (!options.model.empty()) {
        return absl::StrCat("unexpected argument \"", arg,
                            "\" (one model file only)");
      }
      options.model = arg;
      continue;
    }
    // Accept both "--flag value" and "--flag=value".
    std::string value;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg == "-h" || arg == "--help") {
      return "help";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::StrCat(arg, " needs a value");
    }
    auto integer = [&](int64_t minimum,
                       std::optional<int64_t> &out) -> std::string {
      int64_t parsed = 0;
      if (!absl::SimpleAtoi(value, &parsed) || parsed < minimum) {
        return absl::StrCat(arg, ": expected an integer >= ", minimum,
                            ", got \"", value, "\"");
      }
      out = parsed;
      return "";
    };
    std::string error;
    std::optional<int64_t> number;
    if (arg == "--seed") {
      uint64_t seed = 0;
      if (!absl::SimpleAtoi(value, &seed)) {
        error = absl::StrCat(
            "--seed: expected a non-negative 64-bit integer, got \"", value,
            "\"");
      }
      options.seed = seed;
    } else if (arg == "--batch") {
      error = integer(1, number);
      options.batch = number.value_or(0);
    } else if (arg == "--seq-len") {
      error = integer(1, options.seqLen);
    } else if (arg == "--src-len") {
      error = integer(1, options.srcLen);
    } else if (arg == "--tgt-len") {
      error = integer(1, options.tgtLen);
    } else if (arg == "--perturb") {
      if (!absl::SimpleAtod(value, &options.perturb) ||
          !(options.perturb >= 0.0) || options.perturb > 1e6) {
        error = absl::StrCat("--perturb: expected a number >= 0, got \"", value,
                             "\"");
      }
    } else if (arg == "-o" || arg == "--output") {
      options.output = value;
    } else {
      error = absl::StrCat("unknown flag ", arg);
    }
    if (!error.empty()) {
      return error;
    }
  }
  if (options.model.empty()) {
    return "missing the model file MODEL.json";
  }
  if (options.output.empty()) {
    return "missing -o OUT.safetensors";
  }
  return "";
}

/// A float64 tensor of `shape` holding `values`.
Tensor f64Tensor(const std::vector<int64_t> &shape,
                 const std::vector<double> &values) {
  Tensor tensor = Tensor::zeros(DType::F64, shape);
  std::memcpy(tensor.bytes.data(), values.data(),
              values.size() * sizeof(double));
  return tensor;
}

template <typename T>
Tensor intTensor(DType dtype, const std::vector<int64_t> &shape,
                 const std::vector<T> &values) {
  Tensor tensor = Tensor::zeros(dtype, shape);
  std::memcpy(tensor.bytes.data(), values.data(), values.size() * sizeof(T));
  return tensor;
}

/// Adds uniform(-scale, scale) noise to every weight, from its own stream.
void perturbWeights(safetensors::File &weights, double scale, uint64_t seed) {
  SplitMix64 rng(seed);
  for (auto &[name, tensor] : weights.tensors) {
    float *values = tensor.data<float>();
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      values[i] += static_cast<float>(scale * (2.0 * rng.uniform() - 1.0));
    }
  }
}

void addInputs(const ModelConfig &config, const reference::Batch &in,
               safetensors::File &out) {
  int64_t b = in.batch;
  switch (config.task) {
  case Task::LM:
    out.add("input.tokens", intTensor(DType::I32, {b, in.seqLen}, in.tokens));
    out.add("input.targets", intTensor(DType::I32, {b, in.seqLen}, in.targets));
    break;
  case Task::Encoder:
    out.add("input.tokens", intTensor(DType::I32, {b, in.seqLen}, in.tokens));
    out.add("input.mask", intTensor(DType::U8, {b, in.seqLen}, in.mask));
    out.add("input.labels", intTensor(DType::I32, {b}, in.labels));
    break;
  case Task::Seq2Seq:
    out.add("input.source", intTensor(DType::I32, {b, in.srcLen}, in.source));
    out.add("input.source_mask",
            intTensor(DType::U8, {b, in.srcLen}, in.sourceMask));
    out.add("input.target_in",
            intTensor(DType::I32, {b, in.tgtLen}, in.targetIn));
    out.add("input.target_out",
            intTensor(DType::I32, {b, in.tgtLen}, in.targetOut));
    break;
  }
}

} // namespace

int main(int argc, char **argv) {
  Options options;
  if (std::string error = parseOptions(argc, argv, options); !error.empty()) {
    if (error == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    return usageError(error);
  }
  absl::StatusOr<ModelConfig> config = loadModelConfig(options.model);
  if (!config.ok()) {
    std::fprintf(stderr, "synth-reference: %s\n",
                 std::string(config.status().message()).c_str());
    return kUsageError;
  }
  if (config->task != Task::Seq2Seq && (options.srcLen || options.tgtLen)) {
    return usageError(absl::StrCat("--src-len and --tgt-len are for seq2seq "
                                   "models; this one is ",
                                   taskName(config->task), " (use --seq-len)"));
  }
  uint64_t seed = options.seed.value_or(config->seed);
  int64_t seqLen = options.seqLen.value_or(config->maxLen);
  int64_t srcLen = options.srcLen.value_or(seqLen);
  int64_t tgtLen = options.tgtLen.value_or(seqLen);
  // Checked before any input is allocated (evaluate() checks them again).
  for (auto [flag, len] :
       {std::pair<const char *, int64_t>{"--seq-len", seqLen},
        {"--src-len", srcLen},
        {"--tgt-len", tgtLen}}) {
    if (len > config->maxLen) {
      return usageError(absl::StrCat(
          flag, " ", len, " exceeds the model's max_len L = ", config->maxLen,
          " (N <= L is required)"));
    }
  }
  if (options.batch > kMaxBatch) {
    return usageError(absl::StrCat("--batch ", options.batch,
                                   " is larger than this tool's limit of ",
                                   kMaxBatch));
  }

  std::vector<ParamInfo> table = parameterTable(*config);
  safetensors::File weights = initializeParameters(table, seed);
  if (options.perturb > 0.0) {
    perturbWeights(weights, options.perturb, seed + 2);
  }
  absl::StatusOr<reference::ArrayMap> params =
      reference::loadParameters(weights, table);
  if (!params.ok()) {
    std::fprintf(stderr, "synth-reference: %s\n",
                 std::string(params.status().message()).c_str());
    return 1;
  }
  reference::Batch batch = reference::makeRandomBatch(
      *config, options.batch, seqLen, srcLen, tgtLen, seed + 1);
  absl::StatusOr<reference::Result> result =
      reference::evaluate(*config, *params, batch);
  if (!result.ok()) {
    // Every input was derived from the flags, so this is a flag problem
    // (for example --seq-len above max_len).
    return usageError(std::string(result.status().message()));
  }

  safetensors::File out = std::move(weights);
  out.metadata = {{"producer", "synth-reference"},
                  {"model", options.model},
                  {"seed", std::to_string(seed)},
                  {"perturb", absl::StrCat(options.perturb)}};
  addInputs(*config, batch, out);
  out.add("ref.logits", f64Tensor(result->logits.shape, result->logits.data));
  out.add("ref.loss", f64Tensor({}, {result->loss}));
  for (const ParamInfo &info : table) {
    auto it = result->gradients.find(info.name);
    if (it != result->gradients.end()) {
      out.add("grad." + info.name, f64Tensor(info.shape, it->second.data));
    }
  }
  if (absl::Status status = safetensors::write(options.output, out);
      !status.ok()) {
    std::fprintf(stderr, "synth-reference: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  std::printf("synth-reference: %s (%s), seed %llu, loss %.17g -> %s\n",
              options.model.c_str(), taskName(config->task),
              static_cast<unsigned long long>(seed), result->loss,
              options.output.c_str());
  return 0;
}
