//===- synth-run.cpp - run a compiled artifact ----------------------------===//
//
// synth-run <forward|eval|generate|bench|train> ARTIFACT [flags]
//
// forward runs an entry point once on inputs from .npy files (or, for byte
// language models, on --text) and writes its outputs; eval reports the mean
// loss and perplexity of the "loss" entry over a text file; generate
// continues a prompt greedily or by seeded temperature/top-k sampling; bench
// times every kernel call; train runs the "train_step" entry over a prepared
// corpus (Train.cpp). Exit status: 0 on success, 1 when the artifact, an
// input file or a kernel fails, 2 on bad usage (train: 128 + the signal
// after SIGINT or SIGTERM).
//
//===----------------------------------------------------------------------===//

#include "runtime/CpuFeatures.h"
#include "runtime/CudaDevice.h"
#include "runtime/Executor.h"
#include "runtime/FileUtil.h"
#include "runtime/Npy.h"
#include "runtime/Safetensors.h"
#include "tools/synth-run/SynthRun.h"
#include "tools/synth-run/Train.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using synth::DType;
using synth::Tensor;
namespace rt = synth::rt;
using namespace synth::run;

//===----------------------------------------------------------------------===//
// Command line
//===----------------------------------------------------------------------===//

const char kUsage[] = R"(usage: synth-run <command> ARTIFACT [flags]

Runs an artifact written by `synthc --target=cpu -o ARTIFACT` (a model.synth
directory, docs/artifact-format.md).

commands:
  forward   run an entry point once and write or summarize its outputs
  eval      mean loss and perplexity of the "loss" entry over a text file
  generate  continue a prompt (byte-level language models)
  bench     time every kernel call of an entry point
  train     train a language model on a prepared corpus (checkpoints, resume)

Run `synth-run <command> --help` for a command's flags.
)";

const FlagSpec kThreadsFlag = {"threads", "N",
                               "kernel threads (0: one per CPU; default: "
                               "Halide's, HL_NUM_THREADS or one per CPU)"};
const FlagSpec kDeviceFlag = {"device", "cpu|cuda",
                              "where to run: cpu (default; a cpu artifact) "
                              "or cuda (GPU 0; a cuda artifact)"};
const FlagSpec kWeightsFlag = {"weights", "FILE.safetensors",
                               "parameters to use instead of the artifact's "
                               "weights.safetensors (or a checkpoint of "
                               "synth-run train)"};

struct Command {
  const char *name;
  const char *summary;
  std::vector<FlagSpec> flags;
};

const std::vector<Command> &commands() {
  static const std::vector<Command> kCommands = {
      {"forward",
       "Runs an entry point once. Inputs come from --input NAME=FILE.npy, or "
       "for "
       "the\ninput \"tokens\" from --tokens FILE.npy (int32, or int64 in "
       "range) "
       "or --text STRING\n(its bytes, for byte-vocabulary language models; "
       "every batch row gets the text,\npadded with zeros). Outputs go to -o "
       "FILE.npy (one output) or FILE.safetensors\n(all outputs, by name); "
       "without -o, a summary is printed.",
       {{"entry", "NAME", "entry point (default: forward)"},
        {"input", "NAME=FILE.npy", "an input of the entry point", true},
        {"tokens", "FILE.npy", "the input \"tokens\""},
        {"text", "STRING", "the input \"tokens\" as the bytes of STRING"},
        {"o", "FILE", "write outputs: .npy (one output) or .safetensors"},
        kThreadsFlag,
        kDeviceFlag,
        kWeightsFlag}},
      {"eval",
       "Mean cross-entropy, perplexity and bits per byte of the \"loss\" "
       "entry over\nthe bytes of a text file, in windows of the plan's "
       "sequence length.",
       {{"data", "FILE", "the text to evaluate on"},
        {"max-batches", "N", "stop after N batches"},
        kThreadsFlag,
        kDeviceFlag,
        kWeightsFlag}},
      {"generate",
       "Continues a prompt byte by byte. With the \"decode\" entry (every lm "
       "artifact\nhas one) each byte is one call that reads and extends a "
       "decoding cache: keys\nand values for dot-product layers, values only "
       "for synthesized ones. When\nthe cache is full, generation continues "
       "from the last half of the context.\nWithout it (or with --no-cache), "
       "each byte reruns \"forward\" over a window\nof the last N bytes.",
       {{"prompt", "TEXT", "the text to continue"},
        {"max-tokens", "N", "bytes to generate (default 64)"},
        {"no-cache", nullptr,
         "rerun forward over a sliding window instead of using the "
         "\"decode\" entry's cache"},
        {"temperature", "T",
         "0 (default): greedy; > 0: sample from "
         "softmax(logits / T)"},
        {"top-k", "K", "sample among the K most likely bytes (default: all)"},
        {"seed", "S", "sampling seed (default 0)"},
        {"raw", nullptr,
         "print bytes as they are (default: escape "
         "non-printable bytes as \\xNN)"},
        kThreadsFlag,
        kDeviceFlag,
        kWeightsFlag}},
      {"bench",
       "Times every kernel call of an entry point: warm-up runs, then timed "
       "runs;\nreports median/min/max per call and per kernel, with GFLOP/s "
       "and GB/s from\nthe manifest's flops and bytes. Inputs default to "
       "zeros (masks: ones; a\ntraining step's step: 1 of 1000).",
       {{"entry", "NAME", "entry point (default: forward)"},
        {"input", "NAME=FILE.npy", "an input of the entry point", true},
        {"warmup", "N", "untimed runs first (default 3)"},
        {"reps", "N", "timed runs (default 20)"},
        {"json", nullptr,
         "end with one JSON line: entry, median/min/max seconds per run, "
         "tokens per second"},
        kThreadsFlag,
        kDeviceFlag,
        kWeightsFlag}},
      {"train", kTrainSummary, trainFlags()},
  };
  return kCommands;
}

std::string commandHelp(const Command &command) {
  std::string out =
      absl::StrCat("usage: synth-run ", command.name, " ARTIFACT [flags]\n\n",
                   command.summary, "\n\nflags:\n");
  for (const FlagSpec &flag : command.flags) {
    std::string left =
        absl::StrCat(std::strlen(flag.name) == 1 ? "-" : "--", flag.name);
    if (flag.value) {
      absl::StrAppend(&left, " ", flag.value);
    }
    absl::StrAppend(&out,
                    absl::StrFormat("  %-28s %s%s\n", left, flag.help,
                                    flag.repeatable ? " (repeatable)" : ""));
  }
  return out;
}

/// Parses argv after the command name; returns an error message on bad usage.
std::optional<std::string> parseArgs(const Command &command,
                                     const std::vector<std::string> &argv,
                                     Args &args) {
  args.command = command.name;
  std::vector<std::string> positional;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string &arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      args.help = true;
      return std::nullopt;
    }
    if (arg == "--") {
      positional.insert(positional.end(), argv.begin() + i + 1, argv.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    // --name, --name=value, --name value; single-letter flags take one dash.
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    size_t eq = body.find('=');
    if (eq != std::string::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    const FlagSpec *spec = nullptr;
    for (const FlagSpec &flag : command.flags) {
      bool oneLetter = std::strlen(flag.name) == 1;
      if (body == flag.name && (arg[1] == '-') != oneLetter) {
        spec = &flag;
      }
    }
    if (!spec) {
      return absl::StrCat("unknown flag ", arg.substr(0, arg.find('=')));
    }
    std::string shown = arg.substr(0, arg.find('='));
    if (!spec->value) {
      if (value) {
        return absl::StrCat("flag ", shown, " takes no value");
      }
      value = "";
    } else if (!value) {
      if (i + 1 >= argv.size() || argv[i + 1].rfind("--", 0) == 0) {
        return absl::StrCat("flag ", shown, " needs a value (", spec->value,
                            "); write ", shown,
                            "=VALUE for a value that starts with --");
      }
      value = argv[++i];
    }
    std::vector<std::string> &values = args.flags[spec->name];
    if (!values.empty() && !spec->repeatable) {
      return absl::StrCat("flag ", shown, " given twice");
    }
    values.push_back(*value);
  }
  if (positional.empty()) {
    return "missing ARTIFACT (the model.synth directory to run)";
  }
  if (positional.size() > 1) {
    return absl::StrCat("unexpected argument \"", positional[1],
                        "\" (only one ARTIFACT)");
  }
  args.artifact = positional[0];
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

/// The artifact, its thread count, and a session of `entry` with the
/// weights of --weights (if any), on the device of --device.
struct Loaded {
  std::unique_ptr<rt::CudaDevice> device; ///< --device=cuda only
  std::unique_ptr<rt::Artifact> artifact;
  std::unique_ptr<Runner> session;
};

absl::StatusOr<Loaded> load(const Args &args, const std::string &entry,
                            int64_t threads) {
  Loaded loaded;
  std::string device = args.get("device").value_or("cpu");
  if (device != "cpu" && device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device expects cpu or cuda, got \"", device, "\""));
  }
  const bool cuda = device == "cuda";
  absl::StatusOr<std::unique_ptr<rt::Artifact>> artifact = rt::Artifact::load(
      args.artifact, cuda ? rt::DeviceKind::Cuda : rt::DeviceKind::Cpu);
  if (!artifact.ok()) {
    return artifact.status();
  }
  loaded.artifact = std::move(*artifact);
  if (cuda) {
    absl::StatusOr<std::unique_ptr<rt::CudaDevice>> opened =
        rt::CudaDevice::open(0);
    if (!opened.ok()) {
      return opened.status();
    }
    loaded.device = std::move(*opened);
  }
  if (threads >= 0 && !cuda) {
    absl::StatusOr<int> previous =
        loaded.artifact->setNumThreads(static_cast<int>(threads));
    if (!previous.ok()) {
      return previous.status();
    }
  }
  std::shared_ptr<const synth::safetensors::File> weights;
  if (std::optional<std::string> path = args.get("weights")) {
    absl::StatusOr<synth::safetensors::File> file =
        synth::safetensors::read(*path);
    if (!file.ok()) {
      return file.status();
    }
    keepCheckpointParameters(*file);
    absl::Status checked = loaded.artifact->checkWeights(*file, *path);
    if (!checked.ok()) {
      return checked;
    }
    weights =
        std::make_shared<const synth::safetensors::File>(std::move(*file));
  }
  absl::StatusOr<std::unique_ptr<Runner>> session = Runner::create(
      *loaded.artifact, loaded.device.get(), entry, std::move(weights));
  if (!session.ok()) {
    return session.status();
  }
  loaded.session = std::move(*session);
  return loaded;
}

/// The string at model.<key>(.<subkey>), or "" (the model description is
/// carried verbatim in the manifest).
std::string modelString(const rt::Artifact &artifact, const char *key,
                        const char *subkey = nullptr) {
  const synth::json::Value *value = artifact.manifest().model.find(key);
  if (value && subkey) {
    value = value->isObject() ? value->find(subkey) : nullptr;
  }
  return value && value->isString() ? value->asString() : "";
}

/// For commands that feed bytes: the model must be a byte-vocabulary lm.
absl::Status requireByteLm(const rt::Artifact &artifact, const char *what) {
  std::string task = modelString(artifact, "task");
  std::string vocab = modelString(artifact, "vocab", "kind");
  if (task != "lm" || vocab != "bytes") {
    return absl::FailedPreconditionError(absl::StrCat(
        what,
        " needs a language model (task \"lm\") with a byte vocabulary; "
        "this artifact's model has task \"",
        task, "\" and vocab \"", vocab, "\""));
  }
  return absl::OkStatus();
}

const rt::BufferInfo *inputBuffer(const rt::EntryInfo &entry,
                                  const std::string &name) {
  const rt::Binding *binding = entry.findInput(name);
  return binding ? &entry.buffers[static_cast<size_t>(binding->buffer)]
                 : nullptr;
}

const rt::BufferInfo *outputBuffer(const rt::EntryInfo &entry,
                                   const std::string &name) {
  const rt::Binding *binding = entry.findOutput(name);
  return binding ? &entry.buffers[static_cast<size_t>(binding->buffer)]
                 : nullptr;
}

/// Converts a .npy tensor to what input `name` needs: int64 token ids to
/// int32 (when in range), bool to U8, and [N] to [1, N].
absl::StatusOr<Tensor> conformInput(Tensor t, const rt::BufferInfo &buffer,
                                    const std::string &name,
                                    const std::string &source) {
  if (buffer.dtype == DType::I32 && t.dtype == DType::I64) {
    Tensor converted = Tensor::zeros(DType::I32, t.shape);
    for (int64_t i = 0; i < t.numel(); ++i) {
      int64_t v = t.data<int64_t>()[i];
      if (v < INT32_MIN || v > INT32_MAX) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": element ", i, " (", v, ") does not fit in int32"));
      }
      converted.data<int32_t>()[i] = static_cast<int32_t>(v);
    }
    t = std::move(converted);
  }
  if (buffer.dtype == DType::U8 && t.dtype == DType::Bool) {
    t.dtype = DType::U8;
  }
  if (t.shape.size() + 1 == buffer.shape.size() && buffer.shape[0] == 1) {
    t.shape.insert(t.shape.begin(), 1);
  }
  if (t.dtype != buffer.dtype || t.shape != buffer.shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": input \"", name, "\" needs ", synth::dtypeName(buffer.dtype),
        " ", synth::formatShape(buffer.shape), ", the file holds ",
        synth::dtypeName(t.dtype), " ", synth::formatShape(t.shape),
        " (the plan's shapes are fixed at compile time: synthc --batch, "
        "--seq-len)"));
  }
  return t;
}

/// Binds every --input NAME=FILE.npy.
absl::Status bindInputFiles(const Args &args, Runner &session,
                            std::vector<std::string> &bound) {
  for (const std::string &spec : args.getAll("input")) {
    size_t eq = spec.find('=');
    std::string name = spec.substr(0, eq), path = spec.substr(eq + 1);
    const rt::BufferInfo *buffer = inputBuffer(session.entry(), name);
    if (!buffer) {
      return absl::NotFoundError(absl::StrCat("entry ", session.entry().name,
                                              " has no input \"", name, "\""));
    }
    absl::StatusOr<Tensor> t = synth::npy::read(path);
    if (!t.ok()) {
      return t.status();
    }
    absl::StatusOr<Tensor> conformed =
        conformInput(std::move(*t), *buffer, name, path);
    if (!conformed.ok()) {
      return conformed.status();
    }
    absl::Status status = session.setInput(name, *conformed);
    if (!status.ok()) {
      return status;
    }
    bound.push_back(name);
  }
  return absl::OkStatus();
}

/// Token ids for --text: the bytes of `text` in every batch row, padded
/// with zeros.
absl::StatusOr<Tensor> textTokens(const std::string &text,
                                  const rt::BufferInfo &buffer) {
  if (buffer.dtype != DType::I32 || buffer.shape.size() != 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        "input \"tokens\" is ", synth::dtypeName(buffer.dtype), " ",
        synth::formatShape(buffer.shape), ", not I32 [batch, seq]"));
  }
  const int64_t batch = buffer.shape[0], seq = buffer.shape[1];
  if (text.empty() || static_cast<int64_t>(text.size()) > seq) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--text has ", text.size(), " bytes; the plan's sequence length is ",
        seq, " (give 1 to ", seq, " bytes, or recompile with --seq-len)"));
  }
  Tensor tokens = Tensor::zeros(DType::I32, buffer.shape);
  for (int64_t b = 0; b < batch; ++b) {
    for (size_t i = 0; i < text.size(); ++i) {
      tokens.data<int32_t>()[b * seq + static_cast<int64_t>(i)] =
          static_cast<uint8_t>(text[i]);
    }
  }
  return tokens;
}

/// A byte as text: itself when printable, else \xNN (or \n, \t).
std::string showByte(int byte) {
  if (byte == '\n') {
    return "\\n";
  }
  if (byte == '\t') {
    return "\\t";
  }
  if (byte >= 0x20 && byte < 0x7F && byte != '\\') {
    return std::string(1, static_cast<char>(byte));
  }
  return absl::StrFormat("\\x%02x", byte);
}

//===----------------------------------------------------------------------===//
// forward
//===----------------------------------------------------------------------===//

void printSummary(const std::string &name, const Tensor &t) {
  std::printf("%s: %s %s", name.c_str(), synth::dtypeName(t.dtype),
              synth::formatShape(t.shape).c_str());
  if (t.numel() == 0) {
    std::printf("\n");
    return;
  }
  double min = INFINITY, max = -INFINITY, sum = 0;
  int64_t nans = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.dtype == DType::F32   ? t.data<float>()[i]
               : t.dtype == DType::I32 ? t.data<int32_t>()[i]
                                       : t.data<uint8_t>()[i];
    if (std::isnan(v)) {
      ++nans;
      continue;
    }
    min = std::min(min, v);
    max = std::max(max, v);
    sum += v;
  }
  if (t.numel() == 1) {
    std::printf(" = %.6g\n", sum);
  } else {
    std::printf("  min %.6g  max %.6g  mean %.6g", min, max,
                sum / double(t.numel() - nans));
    if (nans) {
      std::printf("  NaN %lld", static_cast<long long>(nans));
    }
    std::printf("\n");
  }
}

int runForward(const Args &args) {
  int64_t threads;
  if (auto bad = intFlag(args, "threads", 0, 4096, -1, threads)) {
    return usageError(args.command, *bad);
  }
  const std::string entry = args.get("entry").value_or("forward");
  const int inputsGiven = args.has("tokens") + args.has("text");
  if (inputsGiven > 1) {
    return usageError(args.command, "give --tokens or --text, not both");
  }
  for (const std::string &spec : args.getAll("input")) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return usageError(
          args.command,
          absl::StrCat("--input expects NAME=FILE.npy, got \"", spec, "\""));
    }
  }
  std::optional<std::string> out = args.get("o");
  auto endsWith = [](const std::string &s, const std::string &suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (out && !endsWith(*out, ".npy") && !endsWith(*out, ".safetensors")) {
    return usageError(args.command,
                      absl::StrCat("-o ", *out,
                                   ": the file name must end in .npy or "
                                   ".safetensors"));
  }

  absl::StatusOr<Loaded> loaded = load(args, entry, threads);
  if (!loaded.ok()) {
    return runError(args.command, loaded.status());
  }
  Runner &session = *loaded->session;
  const rt::EntryInfo &plan = session.entry();
  std::vector<std::string> bound;
  absl::Status status = bindInputFiles(args, session, bound);
  if (!status.ok()) {
    return runError(args.command, status);
  }
  if (inputsGiven) {
    const rt::BufferInfo *tokens = inputBuffer(plan, "tokens");
    if (!tokens) {
      return runError(args.command,
                      absl::NotFoundError(absl::StrCat(
                          "entry ", entry, " has no input \"tokens\"")));
    }
    if (std::count(bound.begin(), bound.end(), "tokens")) {
      return usageError(args.command,
                        "input \"tokens\" given twice (--input and "
                        "--tokens/--text)");
    }
    absl::StatusOr<Tensor> t;
    if (std::optional<std::string> text = args.get("text")) {
      status = requireByteLm(*loaded->artifact, "--text");
      if (!status.ok()) {
        return runError(args.command, status);
      }
      t = textTokens(*text, *tokens);
    } else {
      std::string path = *args.get("tokens");
      t = synth::npy::read(path);
      if (t.ok()) {
        t = conformInput(std::move(*t), *tokens, "tokens", path);
      }
    }
    if (!t.ok()) {
      return runError(args.command, t.status());
    }
    status = session.setInput("tokens", *t);
    if (!status.ok()) {
      return runError(args.command, status);
    }
    bound.push_back("tokens");
  }
  for (const rt::Binding &input : plan.inputs) {
    if (!std::count(bound.begin(), bound.end(), input.name)) {
      return runError(
          args.command,
          absl::InvalidArgumentError(absl::StrCat(
              "input \"", input.name, "\" of entry ", entry,
              " is not given (use --input ", input.name, "=FILE.npy",
              input.name == "tokens" ? ", --tokens or --text" : "", ")")));
    }
  }

  status = session.run();
  if (!status.ok()) {
    return runError(args.command, status);
  }
  std::vector<std::pair<std::string, Tensor>> outputs;
  for (const rt::Binding &output : plan.outputs) {
    absl::StatusOr<Tensor> t = session.output(output.name);
    if (!t.ok()) {
      return runError(args.command, t.status());
    }
    outputs.emplace_back(output.name, std::move(*t));
  }
  // With --text, only the text's positions of row 0 mean anything.
  std::optional<std::string> text = args.get("text");
  if (text) {
    for (auto &[name, t] : outputs) {
      const rt::BufferInfo *tokens = inputBuffer(plan, "tokens");
      if (t.shape.size() == 3 && t.shape[0] == tokens->shape[0] &&
          t.shape[1] == tokens->shape[1]) {
        const int64_t rowBytes =
            t.shape[2] * int64_t(synth::dtypeSize(t.dtype));
        t.bytes.resize(static_cast<size_t>(rowBytes) * text->size());
        t.shape = {static_cast<int64_t>(text->size()), t.shape[2]};
      }
    }
  }

  if (out) {
    if (endsWith(*out, ".npy")) {
      if (outputs.size() != 1) {
        return runError(args.command,
                        absl::InvalidArgumentError(absl::StrCat(
                            "entry ", entry, " has ", outputs.size(),
                            " outputs; write them to a .safetensors file")));
      }
      status = synth::npy::write(*out, outputs[0].second);
    } else {
      synth::safetensors::File file;
      for (auto &[name, t] : outputs) {
        file.add(name, t);
      }
      status = synth::safetensors::write(*out, file);
    }
    if (!status.ok()) {
      return runError(args.command, status);
    }
  }
  for (const auto &[name, t] : outputs) {
    printSummary(name, t);
  }
  if (out) {
    std::printf("wrote %s\n", out->c_str());
  }
  // For a byte LM fed with --text: the most likely next bytes.
  if (text && !outputs.empty() && outputs[0].second.shape.size() == 2 &&
      outputs[0].second.dtype == DType::F32) {
    const Tensor &logits = outputs[0].second;
    const int64_t vocab = logits.shape[1];
    const float *last = logits.data<float>() + (logits.shape[0] - 1) * vocab;
    std::vector<int> order(static_cast<size_t>(vocab));
    for (int i = 0; i < vocab; ++i) {
      order[i] = i;
    }
    size_t top = std::min<size_t>(5, order.size());
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int a, int b) { return last[a] > last[b]; });
    std::printf("next byte after \"%s\":", text->c_str());
    for (size_t i = 0; i < top; ++i) {
      std::printf("  '%s' %.4g", showByte(order[i]).c_str(), last[order[i]]);
    }
    std::printf("\n");
  }
  return 0;
}

//===----------------------------------------------------------------------===//
// eval
//===----------------------------------------------------------------------===//

int runEval(const Args &args) {
  int64_t threads, maxBatches;
  if (auto bad = intFlag(args, "threads", 0, 4096, -1, threads)) {
    return usageError(args.command, *bad);
  }
  if (auto bad =
          intFlag(args, "max-batches", 1, INT64_MAX, INT64_MAX, maxBatches)) {
    return usageError(args.command, *bad);
  }
  std::optional<std::string> dataPath = args.get("data");
  if (!dataPath) {
    return usageError(args.command, "missing --data FILE (the text to "
                                    "evaluate on)");
  }
  absl::StatusOr<Loaded> loaded = load(args, "loss", threads);
  if (!loaded.ok()) {
    return runError(args.command, loaded.status());
  }
  absl::Status status = requireByteLm(*loaded->artifact, "eval");
  if (!status.ok()) {
    return runError(args.command, status);
  }
  Runner &session = *loaded->session;
  const rt::BufferInfo *tokens = inputBuffer(session.entry(), "tokens");
  const rt::BufferInfo *targets = inputBuffer(session.entry(), "targets");
  const rt::BufferInfo *loss = outputBuffer(session.entry(), "loss");
  if (!tokens || !targets || !loss || tokens->shape.size() != 2 ||
      targets->shape != tokens->shape || !loss->shape.empty() ||
      session.entry().inputs.size() != 2) {
    return runError(args.command,
                    absl::FailedPreconditionError(
                        "eval needs a \"loss\" entry with inputs tokens and "
                        "targets [batch, seq] and a scalar output loss"));
  }
  absl::StatusOr<std::string> data = synth::readFileBytes(*dataPath);
  if (!data.ok()) {
    return runError(args.command, data.status());
  }
  if (data->size() < 2) {
    return runError(
        args.command,
        absl::InvalidArgumentError(absl::StrCat(
            *dataPath, ": needs at least 2 bytes, has ", data->size())));
  }
  const int64_t batch = tokens->shape[0], seq = tokens->shape[1];
  // Windows start every seq bytes; the targets are the next bytes. A short
  // last window is padded with ignored (-100) targets.
  std::vector<int64_t> starts;
  for (int64_t s = 0; s + 1 < static_cast<int64_t>(data->size()); s += seq) {
    starts.push_back(s);
  }
  double totalLoss = 0;
  int64_t totalCount = 0, batches = 0;
  auto began = std::chrono::steady_clock::now();
  for (size_t w = 0; w < starts.size() && batches < maxBatches;
       w += static_cast<size_t>(batch), ++batches) {
    Tensor in = Tensor::zeros(DType::I32, tokens->shape);
    Tensor out = Tensor::zeros(DType::I32, tokens->shape);
    std::fill(out.data<int32_t>(), out.data<int32_t>() + out.numel(), -100);
    int64_t count = 0;
    for (int64_t b = 0; b < batch && w + b < starts.size(); ++b) {
      int64_t start = starts[w + b];
      for (int64_t i = 0; i < seq && start + i + 1 < int64_t(data->size());
           ++i) {
        in.data<int32_t>()[b * seq + i] =
            static_cast<uint8_t>((*data)[start + i]);
        out.data<int32_t>()[b * seq + i] =
            static_cast<uint8_t>((*data)[start + i + 1]);
        ++count;
      }
    }
    status = session.setInput("tokens", in);
    if (status.ok()) {
      status = session.setInput("targets", out);
    }
    if (status.ok()) {
      status = session.run();
    }
    if (!status.ok()) {
      return runError(args.command, status);
    }
    // The entry's loss is the mean over this batch's counted positions.
    totalLoss += double(session.output("loss")->data<float>()[0]) * count;
    totalCount += count;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began)
          .count();
  double mean = totalLoss / double(totalCount);
  std::printf("eval %s on %s: %lld bytes predicted in %lld batches of [%lld, "
              "%lld]\n",
              args.artifact.c_str(), dataPath->c_str(),
              static_cast<long long>(totalCount),
              static_cast<long long>(batches), static_cast<long long>(batch),
              static_cast<long long>(seq));
  std::printf("loss %.6f  perplexity %.4f  bits/byte %.4f  (%.0f bytes/s)\n",
              mean, std::exp(mean), mean / std::log(2.0),
              double(totalCount) / seconds);
  return 0;
}

//===----------------------------------------------------------------------===//
// generate
//===----------------------------------------------------------------------===//

/// Generation with the "decode" entry: one token per call, the caches carried
/// from output to input. Returns the process exit code.
int generateWithCache(const Args &args, int64_t threads, int64_t maxTokens,
                      double temperature, int64_t topK, int64_t seed,
                      const std::string &prompt) {
  absl::StatusOr<Loaded> loaded = load(args, "decode", threads);
  if (!loaded.ok()) {
    return runError(args.command, loaded.status());
  }
  Runner &session = *loaded->session;
  absl::StatusOr<DecodeCaches> caches = describeDecode(session.entry());
  if (!caches.ok()) {
    return runError(args.command, caches.status());
  }
  std::fprintf(stderr,
               "synth-run generate: %s decoding with a decoding cache: %d "
               "layer(s) cache keys and values (dot-product attention), %d "
               "cache only values (synthesized attention: dense, random and "
               "factorized scores of a new token do not depend on earlier "
               "tokens); %lld positions\n",
               temperature == 0
                   ? "greedy"
                   : absl::StrFormat("sampled (temperature %g, top-k %s, "
                                     "seed %lld)",
                                     temperature,
                                     topK ? std::to_string(topK) : "all",
                                     static_cast<long long>(seed))
                         .c_str(),
               caches->keyCaches,
               static_cast<int>(caches->names.size()) - caches->keyCaches,
               static_cast<long long>(caches->positions));
  const bool raw = args.has("raw");
  auto emit = [&](int byte) {
    if (raw) {
      std::fputc(byte, stdout);
    } else {
      std::fputs(showByte(byte).c_str(), stdout);
    }
    std::fflush(stdout);
  };
  std::vector<int> context;
  for (char c : prompt) {
    context.push_back(static_cast<uint8_t>(c));
    emit(context.back());
  }
  Random random(static_cast<uint64_t>(seed));
  auto began = std::chrono::steady_clock::now();
  absl::Status status = decodeWithCache(session, context, maxTokens,
                                        {temperature, topK}, random, emit);
  std::printf("\n");
  if (!status.ok()) {
    return runError(args.command, status);
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began)
          .count();
  std::fprintf(stderr,
               "synth-run generate: %lld bytes in %.4g s (%.1f bytes/s)\n",
               static_cast<long long>(maxTokens), seconds,
               seconds > 0 ? double(maxTokens) / seconds : 0.0);
  return 0;
}

int runGenerate(const Args &args) {
  int64_t threads, maxTokens, topK, seed;
  double temperature;
  std::optional<std::string> bad;
  if ((bad = intFlag(args, "threads", 0, 4096, -1, threads)) ||
      (bad = intFlag(args, "max-tokens", 0, 1 << 24, 64, maxTokens)) ||
      (bad = intFlag(args, "top-k", 0, 1 << 24, 0, topK)) ||
      (bad = intFlag(args, "seed", 0, INT64_MAX, 0, seed)) ||
      (bad = doubleFlag(args, "temperature", 0, 0, temperature))) {
    return usageError(args.command, *bad);
  }
  std::optional<std::string> prompt = args.get("prompt");
  if (!prompt || prompt->empty()) {
    return usageError(args.command, "missing --prompt TEXT (at least one "
                                    "byte)");
  }
  if (topK > 0 && temperature == 0) {
    return usageError(args.command, "--top-k needs --temperature > 0 (greedy "
                                    "decoding always takes the top byte)");
  }
  absl::StatusOr<Loaded> loaded = load(args, "forward", threads);
  if (!loaded.ok()) {
    return runError(args.command, loaded.status());
  }
  absl::Status status = requireByteLm(*loaded->artifact, "generate");
  if (!status.ok()) {
    return runError(args.command, status);
  }
  // Artifacts of language models carry a "decode" entry (decoding cache);
  // --no-cache keeps the sliding-window forward, e.g. to compare the two.
  if (loaded->artifact->manifest().findEntry("decode") &&
      !args.has("no-cache")) {
    return generateWithCache(args, threads, maxTokens, temperature, topK, seed,
                             *prompt);
  }
  Runner &session = *loaded->session;
  const rt::BufferInfo *tokens = inputBuffer(session.entry(), "tokens");
  const rt::BufferInfo *logits = outputBuffer(session.entry(), "logits");
  if (!tokens || !logits || session.entry().inputs.size() != 1 ||
      tokens->shape.size() != 2 || tokens->dtype != DType::I32 ||
      logits->shape.size() != 3 || logits->dtype != DType::F32 ||
      logits->shape[0] != tokens->shape[0] ||
      logits->shape[1] != tokens->shape[1]) {
    return runError(args.command,
                    absl::FailedPreconditionError(
                        "generate needs a \"forward\" entry with one input "
                        "tokens I32 [batch, seq] and an output logits F32 "
                        "[batch, seq, vocab]"));
  }
  const int64_t seq = tokens->shape[1];
  const int vocab = static_cast<int>(logits->shape[2]);
  const bool raw = args.has("raw");
  std::fprintf(stderr,
               "synth-run generate: %s decoding, no decoding cache is used: "
               "each byte reruns forward over a window of the last %lld "
               "bytes\n",
               temperature == 0
                   ? "greedy"
                   : absl::StrFormat("sampled (temperature %g, "
                                     "top-k %s, seed %lld)",
                                     temperature,
                                     topK ? std::to_string(topK) : "all",
                                     static_cast<long long>(seed))
                         .c_str(),
               static_cast<long long>(seq));
  std::vector<int> context(prompt->begin(), prompt->end());
  for (int &byte : context) {
    byte = static_cast<uint8_t>(byte);
  }
  auto emit = [&](int byte) {
    if (raw) {
      std::fputc(byte, stdout);
    } else {
      std::fputs(showByte(byte).c_str(), stdout);
    }
  };
  for (int byte : context) {
    emit(byte);
  }
  std::fflush(stdout);
  Random random(static_cast<uint64_t>(seed));
  Tensor input = Tensor::zeros(DType::I32, tokens->shape);
  auto began = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < maxTokens; ++step) {
    // Row 0 holds the last `seq` bytes; the other rows stay zero.
    const int64_t window = std::min<int64_t>(seq, context.size());
    const int *from = context.data() + context.size() - window;
    std::fill(input.data<int32_t>(), input.data<int32_t>() + seq, 0);
    std::copy(from, from + window, input.data<int32_t>());
    status = session.setInput("tokens", input);
    if (status.ok()) {
      status = session.run();
    }
    if (!status.ok()) {
      std::printf("\n");
      return runError(args.command, status);
    }
    absl::StatusOr<rt::TensorView> view = session.outputView("logits");
    const float *last =
        static_cast<const float *>(view->data) + (window - 1) * vocab;
    int next = pickToken(last, vocab, temperature, topK, random);
    context.push_back(next);
    emit(next);
    std::fflush(stdout);
  }
  std::printf("\n");
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began)
          .count();
  std::fprintf(stderr,
               "synth-run generate: %lld bytes in %.4g s (%.1f "
               "bytes/s)\n",
               static_cast<long long>(maxTokens), seconds,
               seconds > 0 ? double(maxTokens) / seconds : 0.0);
  return 0;
}

//===----------------------------------------------------------------------===//
// bench
//===----------------------------------------------------------------------===//

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats stats(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  Stats s;
  s.min = values.front();
  s.max = values.back();
  size_t n = values.size();
  s.median = n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  return s;
}

std::string rate(double amount, double seconds) {
  return seconds > 0 && amount > 0
             ? absl::StrFormat("%.2f", amount / seconds / 1e9)
             : "-";
}

int runBench(const Args &args) {
  int64_t threads, warmup, reps;
  std::optional<std::string> bad;
  if ((bad = intFlag(args, "threads", 0, 4096, -1, threads)) ||
      (bad = intFlag(args, "warmup", 0, 1000000, 3, warmup)) ||
      (bad = intFlag(args, "reps", 1, 1000000, 20, reps))) {
    return usageError(args.command, *bad);
  }
  for (const std::string &spec : args.getAll("input")) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return usageError(
          args.command,
          absl::StrCat("--input expects NAME=FILE.npy, got \"", spec, "\""));
    }
  }
  const std::string entry = args.get("entry").value_or("forward");
  absl::StatusOr<Loaded> loaded = load(args, entry, threads);
  if (!loaded.ok()) {
    return runError(args.command, loaded.status());
  }
  Runner &session = *loaded->session;
  const rt::EntryInfo &plan = session.entry();
  std::vector<std::string> bound;
  absl::Status status = bindInputFiles(args, session, bound);
  if (!status.ok()) {
    return runError(args.command, status);
  }
  // Unbound inputs: token 0 everywhere, masks all ones (every position real).
  for (const rt::Binding &input : plan.inputs) {
    if (std::count(bound.begin(), bound.end(), input.name)) {
      continue;
    }
    const rt::BufferInfo &buffer = plan.buffers[input.buffer];
    Tensor t = Tensor::zeros(buffer.dtype, buffer.shape);
    if (buffer.dtype == DType::U8) {
      std::fill(t.bytes.begin(), t.bytes.end(), 1);
    }
    // A training step: the first of a 1000-step schedule (AdamW's bias
    // correction divides by 1 - beta^step, so step 0 is not a step).
    if (input.name == "step" && buffer.dtype == DType::I32) {
      t.data<int32_t>()[0] = 1;
    }
    if (input.name == "total_steps" && buffer.dtype == DType::I32) {
      t.data<int32_t>()[0] = 1000;
    }
    status = session.setInput(input.name, t);
    if (!status.ok()) {
      return runError(args.command, status);
    }
  }

  const size_t calls = plan.calls.size();
  std::vector<std::vector<double>> perCall(calls);
  std::vector<double> totals, walls;
  std::map<std::string, std::vector<double>> perKernel;
  std::vector<double> seconds;
  rt::RunOptions options;
  options.callSeconds = &seconds;
  for (int64_t rep = 0; rep < warmup + reps; ++rep) {
    auto start = std::chrono::steady_clock::now();
    status = session.run(options);
    double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (!status.ok()) {
      return runError(args.command, status);
    }
    if (rep < warmup) {
      continue;
    }
    std::map<std::string, double> kernelTotal;
    double total = 0;
    for (size_t c = 0; c < calls; ++c) {
      perCall[c].push_back(seconds[c]);
      kernelTotal[plan.calls[c].kernel] += seconds[c];
      total += seconds[c];
    }
    for (const auto &[kernel, t] : kernelTotal) {
      perKernel[kernel].push_back(t);
    }
    totals.push_back(total);
    walls.push_back(wall);
  }

  // Header: what produced these numbers (DESIGN: record performance next to
  // the command, the machine and the date).
  const rt::CpuFeatures &cpu = rt::hostCpuFeatures();
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string threadText =
      threads >= 0
          ? std::to_string(threads)
          : absl::StrCat("Halide default (HL_NUM_THREADS or one per "
                         "CPU; ",
                         std::thread::hardware_concurrency(), " CPUs)");
  std::vector<std::string> halideFeatures = rt::halideFeaturesOf(cpu);
  std::printf("synth-run bench %s: entry %s, %zu calls, %lld timed runs after "
              "%lld warm-up\n",
              args.artifact.c_str(), entry.c_str(), calls,
              static_cast<long long>(reps), static_cast<long long>(warmup));
  std::printf("machine: %s; features %s; threads %s; %s\n",
              cpu.brand.empty() ? "unknown CPU" : cpu.brand.c_str(),
              absl::StrJoin(halideFeatures, " ").c_str(), threadText.c_str(),
              date);
  if (loaded->device) {
    std::printf("device: CUDA %s\n", loaded->device->describe().c_str());
  }
  std::printf("variants: %s\n\n",
              absl::StrJoin(loaded->artifact->manifest().target.variants, ", ")
                  .c_str());

  std::printf("%5s  %-36s %11s %11s %11s %9s %9s\n", "call", "kernel",
              "median us", "min us", "max us", "GFLOP/s", "GB/s");
  for (size_t c = 0; c < calls; ++c) {
    Stats s = stats(perCall[c]);
    std::printf("%5zu  %-36s %11.1f %11.1f %11.1f %9s %9s\n", c,
                plan.calls[c].kernel.c_str(), s.median * 1e6, s.min * 1e6,
                s.max * 1e6,
                rate(double(plan.calls[c].flops), s.median).c_str(),
                rate(double(plan.calls[c].bytes), s.median).c_str());
  }

  std::printf("\nper kernel (all its calls in one run)\n");
  std::printf("%-36s %5s %11s %11s %11s %9s %9s %6s\n", "kernel", "calls",
              "median us", "min us", "max us", "GFLOP/s", "GB/s", "share");
  Stats total = stats(totals);
  for (const auto &[kernel, times] : perKernel) {
    int count = 0;
    double flops = 0, bytes = 0;
    for (const rt::CallInfo &call : plan.calls) {
      if (call.kernel == kernel) {
        ++count;
        flops += double(call.flops);
        bytes += double(call.bytes);
      }
    }
    Stats s = stats(times);
    std::printf("%-36s %5d %11.1f %11.1f %11.1f %9s %9s %5.1f%%\n",
                kernel.c_str(), count, s.median * 1e6, s.min * 1e6, s.max * 1e6,
                rate(flops, s.median).c_str(), rate(bytes, s.median).c_str(),
                total.median > 0 ? 100.0 * s.median / total.median : 0.0);
  }
  double flops = 0, bytes = 0;
  for (const rt::CallInfo &call : plan.calls) {
    flops += double(call.flops);
    bytes += double(call.bytes);
  }
  Stats wall = stats(walls);
  std::printf("\nstep (sum of calls): median %.1f us, min %.1f us, max %.1f "
              "us, %s GFLOP/s, %s GB/s\n",
              total.median * 1e6, total.min * 1e6, total.max * 1e6,
              rate(flops, total.median).c_str(),
              rate(bytes, total.median).c_str());
  std::printf("step (wall, with output poisoning): median %.1f us, min %.1f "
              "us, max %.1f us\n",
              wall.median * 1e6, wall.min * 1e6, wall.max * 1e6);
  if (args.has("json")) {
    // One machine-readable line: the wall time of a run, and tokens per
    // second when the entry reads "tokens" (tools/bench/ reads this).
    int64_t tokens = 0;
    if (const rt::Binding *input = plan.findInput("tokens")) {
      tokens = plan.buffers[input->buffer].numel();
    }
    // Per kernel: the median seconds of all its calls in one run.
    std::string kernels;
    for (const auto &[kernel, times] : perKernel) {
      absl::StrAppend(&kernels, kernels.empty() ? "" : ", ", "\"", kernel,
                      "\": ", absl::StrFormat("%.9g", stats(times).median));
    }
    std::printf("{\"entry\": \"%s\", \"median_seconds\": %.9g, "
                "\"min_seconds\": %.9g, \"max_seconds\": %.9g, "
                "\"tokens\": %lld, \"tokens_per_second\": %.9g, "
                "\"reps\": %lld, \"kernel_median_seconds\": {%s}}\n",
                entry.c_str(), wall.median, wall.min, wall.max,
                static_cast<long long>(tokens),
                wall.median > 0 ? double(tokens) / wall.median : 0.0,
                static_cast<long long>(reps), kernels.c_str());
  }
  return 0;
}

int runCommand(int argc, char **argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return kUsageExit;
  }
  std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const Command *command = nullptr;
  for (const Command &c : commands()) {
    if (name == c.name) {
      command = &c;
    }
  }
  if (!command) {
    std::fprintf(stderr,
                 "synth-run: unknown command \"%s\" (expected forward, eval, "
                 "generate, bench or train)\n%s",
                 name.c_str(), kUsage);
    return kUsageExit;
  }
  Args args;
  if (std::optional<std::string> error = parseArgs(
          *command, std::vector<std::string>(argv + 2, argv + argc), args)) {
    return usageError(name, *error);
  }
  if (args.help) {
    std::fputs(commandHelp(*command).c_str(), stdout);
    return 0;
  }
  if (name == "forward") {
    return runForward(args);
  }
  if (name == "eval") {
    return runEval(args);
  }
  if (name == "generate") {
    return runGenerate(args);
  }
  if (name == "train") {
    return runTrain(args);
  }
  return runBench(args);
}

} // namespace

int main(int argc, char **argv) {
  // The runtime reports errors as values; only allocation can throw (a plan
  // too large for this machine's memory).
  try {
    return runCommand(argc, argv);
  } catch (const std::bad_alloc &) {
    std::fprintf(stderr, "synth-run: error: out of memory\n");
    return kErrorExit;
  }
}
