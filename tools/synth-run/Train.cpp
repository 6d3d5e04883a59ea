//===- Train.cpp - synth-run train: train a language model ----------------===//
//
// Runs the "train_step" entry of an artifact (synthc --train) over the train
// split of a prepared corpus, step after step, with a progress bar, periodic
// held-out evaluation, metrics as JSON lines, a loss curve as SVG, atomic
// checkpoints and exact resumption; at the end it evaluates on the held-out
// split and prints a sample. docs/training.md is the user's description.
//
// Resumption is exact because everything a step depends on is in the
// checkpoint: the parameters and AdamW moments (bit for bit), the step (the
// learning-rate schedule's input), the data stream's seed, epoch and position
// (TokenBatcher), and the sampling generator's state.
//
//===----------------------------------------------------------------------===//

#include "tools/synth-run/Train.h"

#include "runtime/Artifact.h"
#include "runtime/Executor.h"
#include "runtime/FileUtil.h"
#include "runtime/Json.h"
#include "runtime/Safetensors.h"
#include "runtime/Sha256.h"
#include "runtime/TextData.h"
#include "runtime/Tokenizer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace synth::run {

namespace {

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

struct TrainOptions {
  std::string dataDir;
  int64_t steps = 1000;
  bool stepsGiven = false;
  double timeLimit = 0; ///< seconds of this run; 0: none
  int64_t evalEvery = 100;
  int64_t evalBatches = INT64_MAX; ///< all held-out batches
  std::string checkpointDir;
  int64_t checkpointEvery = 100;
  bool resume = false;
  int64_t seed = 0;
  bool seedGiven = false;
  std::string metricsPath, plotPath;
  int64_t sampleTokens = 200;
  std::string prompt = "And";
  Sampling sampling;
  int64_t threads = -1; ///< -1: Halide's default
  int64_t logEvery = 10;
  bool cuda = false; ///< --device=cuda
};

/// ARTIFACT's checkpoint folder when --checkpoint is not given: beside the
/// artifact, its name with .synth replaced by .ckpt (lm.synth -> lm.ckpt).
std::string defaultCheckpointDir(std::string artifact) {
  while (artifact.size() > 1 && artifact.back() == '/') {
    artifact.pop_back();
  }
  const std::string suffix = ".synth";
  if (artifact.size() > suffix.size() &&
      artifact.compare(artifact.size() - suffix.size(), suffix.size(),
                       suffix) == 0) {
    artifact.resize(artifact.size() - suffix.size());
  }
  return artifact + ".ckpt";
}

/// Parses the flags; returns the usage message when one is bad.
std::optional<std::string> parseTrainOptions(const Args &args,
                                             TrainOptions &options) {
  std::optional<std::string> bad;
  int64_t topK = 0;
  double temperature = 0;
  if ((bad = intFlag(args, "steps", 1, INT32_MAX, 1000, options.steps)) ||
      (bad = doubleFlag(args, "time-limit", 0, 0, options.timeLimit)) ||
      (bad =
           intFlag(args, "eval-every", 0, INT32_MAX, 100, options.evalEvery)) ||
      (bad = intFlag(args, "eval-batches", 1, INT64_MAX, INT64_MAX,
                     options.evalBatches)) ||
      (bad = intFlag(args, "checkpoint-every", 0, INT32_MAX, 100,
                     options.checkpointEvery)) ||
      (bad = intFlag(args, "seed", 0, INT64_MAX, 0, options.seed)) ||
      (bad = intFlag(args, "sample-tokens", 0, 1 << 24, 200,
                     options.sampleTokens)) ||
      (bad = doubleFlag(args, "temperature", 0, 0.8, temperature)) ||
      (bad = intFlag(args, "top-k", 0, 1 << 24, 40, topK)) ||
      (bad = intFlag(args, "threads", 0, 4096, -1, options.threads)) ||
      (bad = intFlag(args, "log-every", 1, INT32_MAX, 10, options.logEvery))) {
    return bad;
  }
  if (std::optional<std::string> device = args.get("device")) {
    options.cuda = *device == "cuda";
    if (*device != "cpu" && *device != "cuda") {
      return absl::StrCat("--device expects cpu or cuda, got \"", *device,
                          "\"");
    }
  }
  std::optional<std::string> data = args.get("data");
  if (!data || data->empty()) {
    return std::string("missing --data DIR (a folder written by "
                       "scripts/prepare_kjv.py, docs/data-format.md)");
  }
  if (args.has("top-k") && temperature == 0) {
    return std::string("--top-k needs --temperature > 0 (greedy decoding "
                       "always takes the top token)");
  }
  options.dataDir = *data;
  options.stepsGiven = args.has("steps");
  options.seedGiven = args.has("seed");
  options.resume = args.has("resume");
  options.sampling = {temperature, temperature == 0 ? 0 : topK};
  options.checkpointDir =
      args.get("checkpoint").value_or(defaultCheckpointDir(args.artifact));
  if (options.checkpointDir.empty()) {
    return std::string("--checkpoint expects a folder");
  }
  options.metricsPath = args.get("metrics").value_or(
      absl::StrCat(options.checkpointDir, "/metrics.jsonl"));
  options.plotPath = args.get("plot").value_or(
      absl::StrCat(options.checkpointDir, "/loss.svg"));
  const std::string svg = ".svg";
  if (options.plotPath.size() <= svg.size() ||
      options.plotPath.compare(options.plotPath.size() - svg.size(), svg.size(),
                               svg) != 0) {
    return absl::StrCat("--plot ", options.plotPath,
                        ": the loss curve is written as SVG; the file name "
                        "must end in .svg");
  }
  if (std::optional<std::string> prompt = args.get("prompt")) {
    if (prompt->empty() && options.sampleTokens > 0) {
      return std::string("--prompt needs at least one character");
    }
    options.prompt = *prompt;
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// The model, the artifact and the data
//===----------------------------------------------------------------------===//

/// What a checkpoint must agree with to be resumed: the model description,
/// the plan's shapes and the training data. The artifact's own manifest may
/// differ (a recompiled artifact, other optimizer settings): resuming then
/// only prints a note.
struct RunIdentity {
  std::string modelName;
  std::string modelSha256;    ///< of the manifest's model, serialized
  std::string artifactSha256; ///< of manifest.json
  std::string dataSha256;     ///< of the train split's ids (int32 LE)
  std::string vocabulary;     ///< e.g. "bytes (256 ids)"
  int64_t batch = 0, seqLen = 0;
};

const json::Value *modelField(const rt::Artifact &artifact, const char *key) {
  return artifact.manifest().model.find(key);
}

std::string modelString(const rt::Artifact &artifact, const char *key) {
  const json::Value *value = modelField(artifact, key);
  return value && value->isString() ? value->asString() : "";
}

/// The model's vocabulary from its description ({"kind": "bytes"} or
/// {"kind": "sentencepiece", "size": N}).
absl::StatusOr<std::pair<data::TokenizerKind, int64_t>>
modelVocabulary(const rt::Artifact &artifact) {
  const json::Value *vocab = modelField(artifact, "vocab");
  const json::Value *kind =
      vocab && vocab->isObject() ? vocab->find("kind") : nullptr;
  if (kind && kind->isString() && kind->asString() == "bytes") {
    return std::make_pair(data::TokenizerKind::Bytes, int64_t{256});
  }
  const json::Value *size =
      vocab && vocab->isObject() ? vocab->find("size") : nullptr;
  if (kind && kind->isString() && kind->asString() == "sentencepiece" && size &&
      size->isInteger()) {
    return std::make_pair(data::TokenizerKind::SentencePiece, size->asInt());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      artifact.dir(), ": the manifest's model has no vocabulary (model.vocab "
                      "with kind bytes or sentencepiece)"));
}

const rt::BufferInfo *bufferOf(const rt::EntryInfo &entry,
                               const rt::Binding *binding) {
  return binding ? &entry.buffers[static_cast<size_t>(binding->buffer)]
                 : nullptr;
}

/// Checks that the artifact can be trained here: a language model with the
/// entries train_step (tokens, targets, step, total_steps -> loss,
/// learning_rate, grad_sq_norm) and loss; returns [batch, seq].
absl::StatusOr<std::vector<int64_t>>
checkTrainable(const rt::Artifact &artifact) {
  if (modelString(artifact, "task") != "lm") {
    return absl::FailedPreconditionError(absl::StrCat(
        "train needs a language model (task \"lm\"); ", artifact.dir(),
        " holds task \"", modelString(artifact, "task"), "\""));
  }
  const rt::EntryInfo *step = artifact.entry("train_step");
  if (!step) {
    return absl::FailedPreconditionError(absl::StrCat(
        artifact.dir(),
        " has no \"train_step\" entry: compile the model with synthc "
        "--train (e.g. synthc MODEL.json --target=cpu --train --batch 8 "
        "--seq-len 128 -o model.synth)"));
  }
  const rt::BufferInfo *tokens = bufferOf(*step, step->findInput("tokens"));
  const rt::BufferInfo *targets = bufferOf(*step, step->findInput("targets"));
  const rt::BufferInfo *stepInput = bufferOf(*step, step->findInput("step"));
  const rt::BufferInfo *total = bufferOf(*step, step->findInput("total_steps"));
  bool scalarsOk = true;
  for (const char *name : {"loss", "learning_rate", "grad_sq_norm"}) {
    const rt::BufferInfo *out = bufferOf(*step, step->findOutput(name));
    scalarsOk =
        scalarsOk && out && out->shape.empty() && out->dtype == DType::F32;
  }
  if (!tokens || !targets || !stepInput || !total || step->inputs.size() != 4 ||
      tokens->shape.size() != 2 || tokens->dtype != DType::I32 ||
      targets->shape != tokens->shape || !stepInput->shape.empty() ||
      !total->shape.empty() || !scalarsOk) {
    return absl::FailedPreconditionError(absl::StrCat(
        artifact.dir(),
        ": the \"train_step\" entry needs inputs tokens and targets I32 "
        "[batch, seq], step and total_steps (I32 scalars) and scalar outputs "
        "loss, learning_rate and grad_sq_norm"));
  }
  const rt::EntryInfo *loss = artifact.entry("loss");
  const rt::BufferInfo *lossTokens =
      loss ? bufferOf(*loss, loss->findInput("tokens")) : nullptr;
  if (!lossTokens || lossTokens->shape != tokens->shape ||
      !bufferOf(*loss, loss->findInput("targets")) ||
      !bufferOf(*loss, loss->findOutput("loss")) || loss->inputs.size() != 2) {
    return absl::FailedPreconditionError(absl::StrCat(
        artifact.dir(),
        ": held-out evaluation needs a \"loss\" entry with inputs tokens "
        "and targets of the train_step's shape"));
  }
  return tokens->shape;
}

std::string idsSha256(const std::vector<int32_t> &ids) {
  Sha256 hash;
  // Little-endian int32, as the ids are held on every supported host.
  hash.update(ids.data(), ids.size() * sizeof(int32_t));
  return hash.hexDigest();
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

constexpr char kCheckpointFormat[] = "synth-run-checkpoint";
constexpr int64_t kCheckpointVersion = 1;
constexpr char kCheckpointFile[] = "checkpoint.safetensors";
constexpr char kStatePrefix[] = "state.";

/// Where training stands after `step` steps (what resuming restores besides
/// the tensors).
struct Progress {
  int64_t step = 0;
  int64_t totalSteps = 0;
  uint64_t seed = 0;
  data::TokenBatcher::State data;
  uint64_t rngState = 0;
  double elapsedSeconds = 0; ///< training time of all runs so far
  int64_t tokensSeen = 0;    ///< targets trained on so far
};

/// Makes a rename in `dir` durable (the file's own fsync does not cover the
/// directory entry).
absl::Status syncDirectory(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::DataLossError(
        absl::StrCat(dir, ": cannot open to sync: ", std::strerror(errno)));
  }
  bool ok = ::fsync(fd) == 0;
  std::string why = ok ? "" : std::strerror(errno);
  ::close(fd);
  if (!ok) {
    return absl::DataLossError(absl::StrCat(dir, ": fsync failed: ", why));
  }
  return absl::OkStatus();
}

/// OK when every F32 element of `tensor` is finite.
bool allFinite(const Tensor &tensor) {
  if (tensor.dtype != DType::F32) {
    return true;
  }
  const float *data = tensor.data<float>();
  for (int64_t i = 0; i < tensor.numel(); ++i) {
    if (!std::isfinite(data[i])) {
      return false;
    }
  }
  return true;
}

/// Writes the parameters, the optimizer state and `progress` to
/// DIR/checkpoint.safetensors: a temporary file in DIR, fsync, rename over
/// the previous checkpoint, fsync DIR. Refuses parameters or moments that are
/// not finite, so a diverging run never replaces a good checkpoint.
absl::Status writeCheckpoint(const std::string &dir, const Runner &session,
                             const RunIdentity &identity,
                             const Progress &progress) {
  absl::StatusOr<std::shared_ptr<const safetensors::File>> weights =
      session.weights();
  if (!weights.ok()) {
    return weights.status();
  }
  safetensors::File file;
  for (const auto &[name, tensor] : (*weights)->tensors) {
    if (!allFinite(tensor)) {
      return absl::DataLossError(
          absl::StrCat("parameter ", name, " is not finite after step ",
                       progress.step, "; the checkpoint is not written"));
    }
    file.add(name, tensor);
  }
  for (const std::string &name : session.stateNames()) {
    absl::StatusOr<rt::TensorView> view = session.state(name);
    if (!view.ok()) {
      return view.status();
    }
    Tensor tensor = view->copy();
    if (!allFinite(tensor)) {
      return absl::DataLossError(
          absl::StrCat("optimizer state ", name, " is not finite after step ",
                       progress.step, "; the checkpoint is not written"));
    }
    file.add(kStatePrefix + name, std::move(tensor));
  }
  auto meta = [&](const char *key, std::string value) {
    file.metadata.emplace_back(key, std::move(value));
  };
  meta("format", kCheckpointFormat);
  meta("version", std::to_string(kCheckpointVersion));
  meta("model_name", identity.modelName);
  meta("model_sha256", identity.modelSha256);
  meta("artifact_manifest_sha256", identity.artifactSha256);
  meta("batch", std::to_string(identity.batch));
  meta("seq_len", std::to_string(identity.seqLen));
  meta("data_sha256", identity.dataSha256);
  meta("vocabulary", identity.vocabulary);
  meta("step", std::to_string(progress.step));
  meta("total_steps", std::to_string(progress.totalSteps));
  meta("seed", std::to_string(progress.seed));
  meta("data_epoch", std::to_string(progress.data.epoch));
  meta("data_position", std::to_string(progress.data.position));
  meta("rng_state", std::to_string(progress.rngState));
  meta("elapsed_seconds", absl::StrFormat("%.3f", progress.elapsedSeconds));
  meta("tokens_seen", std::to_string(progress.tokensSeen));
  absl::Status status =
      safetensors::write(absl::StrCat(dir, "/", kCheckpointFile), file);
  if (!status.ok()) {
    return status;
  }
  return syncDirectory(dir);
}

/// A checkpoint read back and checked against the artifact and the run.
struct Checkpoint {
  Progress progress;
  std::shared_ptr<safetensors::File> weights;
  std::vector<std::pair<std::string, Tensor>> states;
  std::string artifactSha256;
};

/// Reads `path` and checks it against `artifact`, `identity` and the state
/// names of the train_step entry. Every error names the file.
absl::StatusOr<Checkpoint>
readCheckpoint(const std::string &path, const rt::Artifact &artifact,
               const RunIdentity &identity,
               const std::vector<std::string> &stateNames) {
  absl::StatusOr<std::string> bytes = readFileBytes(path);
  if (!bytes.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "no checkpoint to resume: ", bytes.status().message(),
        " (start without --resume, or give the run's --checkpoint DIR)"));
  }
  absl::StatusOr<safetensors::File> file = safetensors::parse(*bytes, path);
  if (!file.ok()) {
    return absl::DataLossError(
        absl::StrCat("corrupt checkpoint: ", file.status().message()));
  }
  std::map<std::string, std::string> meta(file->metadata.begin(),
                                          file->metadata.end());
  auto text = [&](const char *key) -> absl::StatusOr<std::string> {
    auto it = meta.find(key);
    if (it == meta.end()) {
      return absl::DataLossError(absl::StrCat(
          path, ": not a synth-run checkpoint (its metadata has no \"", key,
          "\")"));
    }
    return it->second;
  };
  auto number = [&](const char *key, uint64_t &out) -> absl::Status {
    absl::StatusOr<std::string> value = text(key);
    if (!value.ok()) {
      return value.status();
    }
    if (!absl::SimpleAtoi(*value, &out)) {
      return absl::DataLossError(
          absl::StrCat(path, ": metadata \"", key, "\" is \"", *value,
                       "\", not a non-negative integer"));
    }
    return absl::OkStatus();
  };
  absl::StatusOr<std::string> format = text("format");
  if (!format.ok()) {
    return format.status();
  }
  if (*format != kCheckpointFormat) {
    return absl::DataLossError(absl::StrCat(
        path, ": format \"", *format, "\" is not \"", kCheckpointFormat, "\""));
  }
  uint64_t version = 0;
  absl::Status status = number("version", version);
  if (!status.ok()) {
    return status;
  }
  if (version != kCheckpointVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": unsupported checkpoint version ", version,
                     " (this synth-run reads ", kCheckpointVersion, ")"));
  }

  // The model and the plan's shapes: a checkpoint of another model (or of
  // other shapes, whose data positions mean other windows) is refused.
  absl::StatusOr<std::string> modelSha = text("model_sha256");
  absl::StatusOr<std::string> modelName = text("model_name");
  if (!modelSha.ok() || !modelName.ok()) {
    return modelSha.ok() ? modelName.status() : modelSha.status();
  }
  if (*modelSha != identity.modelSha256) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " was written for model \"", *modelName,
        "\" (description sha256 ", modelSha->substr(0, 12), "...), but ",
        artifact.dir(), " holds model \"", identity.modelName, "\" (",
        identity.modelSha256.substr(0, 12),
        "...); resume with the artifact it was trained with, or train "
        "into another --checkpoint folder"));
  }
  uint64_t batch = 0, seqLen = 0;
  if (!(status = number("batch", batch)).ok() ||
      !(status = number("seq_len", seqLen)).ok()) {
    return status;
  }
  if (static_cast<int64_t>(batch) != identity.batch ||
      static_cast<int64_t>(seqLen) != identity.seqLen) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " was trained with batches of [", batch, ", ", seqLen, "], ",
        artifact.dir(), " has [", identity.batch, ", ", identity.seqLen,
        "] (synthc --batch, --seq-len must match to resume)"));
  }
  absl::StatusOr<std::string> dataSha = text("data_sha256");
  if (!dataSha.ok()) {
    return dataSha.status();
  }
  if (*dataSha != identity.dataSha256) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " was trained on other data (train split sha256 ",
                     dataSha->substr(0, 12), "..., --data's is ",
                     identity.dataSha256.substr(0, 12),
                     "...); its data position means nothing for this corpus"));
  }

  Checkpoint checkpoint;
  Progress &p = checkpoint.progress;
  uint64_t step = 0, total = 0, seed = 0, tokens = 0;
  if (!(status = number("step", step)).ok() ||
      !(status = number("total_steps", total)).ok() ||
      !(status = number("seed", seed)).ok() ||
      !(status = number("data_epoch", p.data.epoch)).ok() ||
      !(status = number("data_position", p.data.position)).ok() ||
      !(status = number("rng_state", p.rngState)).ok() ||
      !(status = number("tokens_seen", tokens)).ok()) {
    return status;
  }
  if (total < 1 || total > INT32_MAX || step > total) {
    return absl::DataLossError(absl::StrCat(path, ": step ", step, " of ",
                                            total, " is not a valid position"));
  }
  p.step = static_cast<int64_t>(step);
  p.totalSteps = static_cast<int64_t>(total);
  p.seed = seed;
  p.tokensSeen = static_cast<int64_t>(tokens);
  absl::StatusOr<std::string> elapsed = text("elapsed_seconds");
  if (!elapsed.ok() || !absl::SimpleAtod(*elapsed, &p.elapsedSeconds)) {
    p.elapsedSeconds = 0; // informational only
  }
  checkpoint.artifactSha256 = meta["artifact_manifest_sha256"];

  // Tensors: exactly the parameters and the train_step's state.
  checkpoint.weights = std::make_shared<safetensors::File>();
  for (const rt::ParameterInfo &param : artifact.manifest().parameters) {
    const Tensor *tensor = file->find(param.name);
    if (!tensor) {
      return absl::DataLossError(
          absl::StrCat(path, ": parameter ", param.name, " is missing"));
    }
    checkpoint.weights->add(param.name, *tensor);
  }
  status = artifact.checkWeights(*checkpoint.weights, path);
  if (!status.ok()) {
    return status;
  }
  for (const std::string &name : stateNames) {
    const Tensor *tensor = file->find(kStatePrefix + name);
    if (!tensor) {
      return absl::DataLossError(absl::StrCat(
          path, ": optimizer state ", kStatePrefix, name, " is missing"));
    }
    checkpoint.states.emplace_back(name, *tensor);
  }
  const size_t expected =
      artifact.manifest().parameters.size() + stateNames.size();
  if (file->tensors.size() != expected) {
    for (const auto &[name, tensor] : file->tensors) {
      bool known = artifact.manifest().findParameter(name) != nullptr;
      for (const std::string &state : stateNames) {
        known = known || name == kStatePrefix + state;
      }
      if (!known) {
        return absl::DataLossError(absl::StrCat(
            path, ": unexpected tensor \"", name,
            "\" (neither a parameter nor train_step state of the artifact)"));
      }
    }
  }
  return checkpoint;
}

/// Holds an exclusive lock on DIR/lock for the life of the process, so two
/// runs never write one checkpoint folder.
absl::Status lockCheckpointDir(const std::string &dir) {
  std::string path = absl::StrCat(dir, "/lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot create: ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "another synth-run train is using ", dir, " (", path,
        " is locked); wait for it to end or give another --checkpoint"));
  }
  return absl::OkStatus(); // the descriptor stays open until exit
}

/// Removes temporary files of writes that a killed run left behind.
void removeStaleTemporaries(const std::string &dir) {
  DIR *folder = ::opendir(dir.c_str());
  if (!folder) {
    return;
  }
  const std::string prefix = absl::StrCat(kCheckpointFile, ".tmp.");
  while (const dirent *entry = ::readdir(folder)) {
    std::string name = entry->d_name;
    if (name.rfind(prefix, 0) == 0) {
      ::unlink(absl::StrCat(dir, "/", name).c_str());
    }
  }
  ::closedir(folder);
}

//===----------------------------------------------------------------------===//
// Metrics and the loss curve
//===----------------------------------------------------------------------===//

struct CurvePoint {
  int64_t step;
  double loss;
};

/// The metrics file (one JSON object per line) and the points of the loss
/// curve. On resume, records after the checkpoint's step (written by the run
/// that was stopped) are dropped, so the file reads as one run.
class Metrics {
public:
  ~Metrics() {
    if (file_) {
      std::fclose(file_);
    }
  }

  absl::Status open(const std::string &path, std::optional<int64_t> resumeAt) {
    path_ = path;
    std::string kept;
    if (resumeAt) {
      absl::StatusOr<std::string> old = readFileBytes(path);
      if (old.ok()) {
        for (absl::string_view line : absl::StrSplit(*old, '\n')) {
          absl::StatusOr<json::Value> record =
              json::parse(std::string(line), path);
          const json::Value *step = record.ok() && record->isObject()
                                        ? record->find("step")
                                        : nullptr;
          if (!step || !step->isInteger() || step->asInt() > *resumeAt) {
            continue;
          }
          absl::StrAppend(&kept, line, "\n");
          remember(*record);
        }
      }
    }
    absl::Status status = writeFileAtomic(path, kept);
    if (!status.ok()) {
      return status;
    }
    file_ = std::fopen(path.c_str(), "a");
    if (!file_) {
      return absl::PermissionDeniedError(
          absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  void logTrain(int64_t step, double loss, double learningRate, double gradNorm,
                double tokensPerSecond, double elapsed) {
    append(absl::StrFormat(
        "{\"step\": %d, \"loss\": %.7g, \"learning_rate\": %.7g, "
        "\"grad_norm\": %.7g, \"tokens_per_second\": %.1f, "
        "\"elapsed_seconds\": %.3f}",
        step, loss, learningRate, gradNorm, tokensPerSecond, elapsed));
    train_.push_back({step, loss});
  }

  void logEval(int64_t step, double loss, int64_t tokens, bool bytes) {
    std::string extra = bytes
                            ? absl::StrFormat(", \"eval_bits_per_byte\": %.7g",
                                              loss / std::log(2.0))
                            : "";
    append(absl::StrFormat("{\"step\": %d, \"eval_loss\": %.7g, "
                           "\"eval_perplexity\": %.7g%s, \"eval_tokens\": %d}",
                           step, loss, std::exp(loss), extra, tokens));
    eval_.push_back({step, loss});
  }

  const std::vector<CurvePoint> &train() const { return train_; }
  const std::vector<CurvePoint> &eval() const { return eval_; }
  const std::string &path() const { return path_; }

private:
  void remember(const json::Value &record) {
    int64_t step = record.find("step")->asInt();
    const json::Value *loss = record.find("loss");
    if (loss && loss->isNumber()) {
      train_.push_back({step, loss->asDouble()});
    }
    const json::Value *evalLoss = record.find("eval_loss");
    if (evalLoss && evalLoss->isNumber()) {
      eval_.push_back({step, evalLoss->asDouble()});
    }
  }

  void append(const std::string &line) {
    if (file_) {
      std::fprintf(file_, "%s\n", line.c_str());
      std::fflush(file_);
    }
  }

  std::string path_;
  std::FILE *file_ = nullptr;
  std::vector<CurvePoint> train_, eval_;
};

/// Tick positions covering [lo, hi]: multiples of 1, 2 or 5 times a power of
/// ten, about `count` of them.
std::vector<double> niceTicks(double lo, double hi, int count,
                              double minStep = 0) {
  double range = hi - lo;
  if (!(range > 0)) {
    return {lo};
  }
  double raw = range / count;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * power;
    if (step >= raw) {
      break;
    }
  }
  step = std::max(step, minStep);
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step;
       t += step) {
    ticks.push_back(std::fabs(t) < 1e-12 * step ? 0.0 : t);
  }
  return ticks;
}

std::string escapeXml(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

/// The loss curve as a standalone SVG: training loss (a line) and held-out
/// loss (dots joined by a dashed line) against the step, with ticked and
/// labelled axes and a legend.
std::string lossCurveSvg(const std::string &title,
                         const std::vector<CurvePoint> &train,
                         const std::vector<CurvePoint> &eval) {
  const double width = 800, height = 480;
  const double left = 80, right = 24, top = 48, bottom = 60;
  const double plotW = width - left - right, plotH = height - top - bottom;
  double xMin = 0, xMax = 1, yMin = INFINITY, yMax = -INFINITY;
  for (const auto *points : {&train, &eval}) {
    for (const CurvePoint &p : *points) {
      xMax = std::max(xMax, double(p.step));
      yMin = std::min(yMin, p.loss);
      yMax = std::max(yMax, p.loss);
    }
  }
  if (!(yMin <= yMax)) {
    yMin = 0;
    yMax = 1;
  }
  double pad = std::max(0.05 * (yMax - yMin), 1e-3);
  yMin = std::max(0.0, yMin - pad);
  yMax += pad;
  std::vector<double> xTicks = niceTicks(xMin, xMax, 8, 1);
  std::vector<double> yTicks = niceTicks(yMin, yMax, 6);
  auto x = [&](double step) {
    return left + (step - xMin) / (xMax - xMin) * plotW;
  };
  auto y = [&](double loss) {
    return top + (yMax - loss) / (yMax - yMin) * plotH;
  };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
      "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%g\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">%s"
      "</text>\n",
      width, height, width, height, left + plotW / 2, escapeXml(title));
  // Grid, ticks and tick labels.
  for (double t : xTicks) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"#e0e0e0\"/>\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
        "y2=\"%.1f\" stroke=\"black\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
        "text-anchor=\"middle\">%g</text>\n",
        x(t), top, x(t), top + plotH, x(t), top + plotH, x(t), top + plotH + 5,
        x(t), top + plotH + 19, t);
  }
  for (double t : yTicks) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"#e0e0e0\"/>\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
        "y2=\"%.1f\" stroke=\"black\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
        "text-anchor=\"end\">%g</text>\n",
        left, y(t), left + plotW, y(t), left - 5, y(t), left, y(t), left - 8,
        y(t) + 4, t);
  }
  // Axes and their labels.
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
      "fill=\"none\" stroke=\"black\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
      "text-anchor=\"middle\">step</text>\n<text x=\"18\" y=\"%.1f\" "
      "text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">loss (nats "
      "per token)</text>\n",
      left, top, plotW, plotH, left + plotW / 2, height - 16, top + plotH / 2,
      top + plotH / 2);
  auto polyline = [&](const std::vector<CurvePoint> &points,
                      const char *style) {
    if (points.empty()) {
      return;
    }
    std::string coords;
    for (const CurvePoint &p : points) {
      absl::StrAppendFormat(&coords, "%.1f,%.1f ", x(double(p.step)),
                            y(p.loss));
    }
    absl::StrAppendFormat(&svg, "<polyline fill=\"none\" %s points=\"%s\"/>\n",
                          style, coords);
  };
  polyline(train, "stroke=\"#1f77b4\" stroke-width=\"1.5\"");
  polyline(eval, "stroke=\"#d62728\" stroke-width=\"1.5\" "
                 "stroke-dasharray=\"5,4\"");
  for (const CurvePoint &p : eval) {
    absl::StrAppendFormat(&svg,
                          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
                          "fill=\"#d62728\"/>\n",
                          x(double(p.step)), y(p.loss));
  }
  // Legend in the upper right corner.
  double lx = left + plotW - 170, ly = top + 14;
  absl::StrAppendFormat(
      &svg,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"160\" height=\"44\" fill=\"white\" "
      "stroke=\"#999\"/>\n<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
      "y2=\"%.1f\" stroke=\"#1f77b4\" stroke-width=\"2\"/>\n<text x=\"%.1f\" "
      "y=\"%.1f\">training loss</text>\n<line x1=\"%.1f\" y1=\"%.1f\" "
      "x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" stroke-width=\"2\" "
      "stroke-dasharray=\"5,4\"/>\n<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" "
      "fill=\"#d62728\"/>\n<text x=\"%.1f\" y=\"%.1f\">held-out loss</text>\n",
      lx, ly - 8, lx + 8, ly + 6, lx + 32, ly + 6, lx + 40, ly + 10, lx + 8,
      ly + 26, lx + 32, ly + 26, lx + 20, ly + 26, lx + 40, ly + 30);
  svg += "</svg>\n";
  return svg;
}

//===----------------------------------------------------------------------===//
// Progress display
//===----------------------------------------------------------------------===//

/// "1:02:03" or "2:03".
std::string clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) {
    return "?";
  }
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  }
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

/// "12.3k" style rates.
std::string shortRate(double rate) {
  if (rate >= 1e6) {
    return absl::StrFormat("%.2fM", rate / 1e6);
  }
  if (rate >= 1e3) {
    return absl::StrFormat("%.1fk", rate / 1e3);
  }
  return absl::StrFormat("%.0f", rate);
}

/// The progress bar on stderr: on a terminal one line redrawn in place (at
/// most ten times a second, cut to the terminal's width), otherwise one line
/// every --log-every steps.
/// Loss and step time are exponential moving averages (debiased).
class ProgressBar {
public:
  ProgressBar(int64_t total, int64_t logEvery, double timeLimit)
      : total_(total), logEvery_(logEvery), timeLimit_(timeLimit),
        tty_(::isatty(STDERR_FILENO) == 1) {}

  void update(int64_t step, double loss, double learningRate, double gradNorm,
              double stepSeconds, int64_t stepTokens, double elapsedTotal,
              double elapsedRun) {
    ++seen_;
    loss_ = kDecay * loss_ + (1 - kDecay) * loss;
    seconds_ = kDecay * seconds_ + (1 - kDecay) * stepSeconds;
    tokens_ = kDecay * tokens_ + (1 - kDecay) * double(stepTokens);
    if (tty_) {
      auto now = std::chrono::steady_clock::now();
      if (step != total_ &&
          std::chrono::duration<double>(now - lastDraw_).count() < 0.1) {
        return;
      }
      lastDraw_ = now;
    } else if (step % logEvery_ != 0 && step != total_) {
      return;
    }
    std::string line =
        describe(step, learningRate, gradNorm, elapsedTotal, elapsedRun, tty_);
    if (tty_) {
      // One line that fits the terminal, or \r would not return to its
      // start: without the bar when it does not fit, else cut at the end.
      struct winsize size;
      if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 &&
          line.size() >= size.ws_col) {
        line = describe(step, learningRate, gradNorm, elapsedTotal, elapsedRun,
                        false);
        line.resize(std::min<size_t>(line.size(), size.ws_col - 1));
      }
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      drawn_ = true;
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

  /// A line of its own (evaluations, checkpoints), below the bar.
  void message(const std::string &text) {
    clear();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
  }

  /// Ends the bar's line before other output.
  void clear() {
    if (drawn_) {
      std::fprintf(stderr, "\r\033[K");
      drawn_ = false;
    }
  }

  double smoothedLoss() const { return debias(loss_); }
  double tokensPerSecond() const {
    double seconds = debias(seconds_);
    return seconds > 0 ? debias(tokens_) / seconds : 0;
  }

private:
  static constexpr double kDecay = 0.9;

  double debias(double average) const {
    return seen_ ? average / (1 - std::pow(kDecay, double(seen_))) : 0;
  }

  std::string describe(int64_t step, double learningRate, double gradNorm,
                       double elapsedTotal, double elapsedRun,
                       bool withBar) const {
    double eta = double(total_ - step) * debias(seconds_);
    if (timeLimit_ > 0) {
      eta = std::min(eta, std::max(0.0, timeLimit_ - elapsedRun));
    }
    const double fraction = double(step) / double(total_);
    std::string head =
        absl::StrFormat("step %*d/%d", digits(total_), step, total_);
    if (withBar) {
      const int width = 10;
      int filled = static_cast<int>(fraction * width);
      absl::StrAppend(&head, " [", std::string(filled, '#'),
                      std::string(width - filled, '.'), "]");
    }
    // Most wanted first: a narrow terminal cuts the end of the line.
    return absl::StrFormat(
        "%s %3.0f%%  loss %.4f  %s tok/s  elapsed %s  ETA %s  lr %.2e  "
        "grad %.3g",
        head, 100 * fraction, smoothedLoss(), shortRate(tokensPerSecond()),
        clock(elapsedTotal), clock(eta), learningRate, gradNorm);
  }

  static int digits(int64_t n) {
    return static_cast<int>(std::to_string(n).size());
  }

  int64_t total_, logEvery_;
  double timeLimit_;
  bool tty_;
  bool drawn_ = false;
  int64_t seen_ = 0;
  double loss_ = 0, seconds_ = 0, tokens_ = 0;
  std::chrono::steady_clock::time_point lastDraw_;
};

//===----------------------------------------------------------------------===//
// Signals
//===----------------------------------------------------------------------===//

/// The signal that asked the run to stop (SIGINT or SIGTERM), or 0. The
/// handler only records it; the loop finishes its step, writes a checkpoint
/// and exits with 128 + the signal.
volatile std::sig_atomic_t stopSignal = 0;

void recordStopSignal(int signal) { stopSignal = signal; }

void installStopHandlers() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = recordStopSignal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted reads and writes: the checkpoint write must finish.
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

const char *signalName(int signal) {
  return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal";
}

//===----------------------------------------------------------------------===//
// Evaluation and the sample
//===----------------------------------------------------------------------===//

struct Evaluation {
  double loss = 0; ///< mean cross-entropy per target, nats
  int64_t tokens = 0;
  int64_t batches = 0;
  double seconds = 0;
};

/// The mean loss of the "loss" entry at the train session's parameters over
/// the first `maxBatches` held-out batches. Stops early (and says so with
/// nullopt) when a stop signal arrives.
absl::StatusOr<std::optional<Evaluation>>
evaluate(Runner &lossSession, const Runner &trainSession,
         const std::vector<data::Batch> &batches, int64_t maxBatches) {
  auto began = std::chrono::steady_clock::now();
  absl::StatusOr<std::shared_ptr<const safetensors::File>> weights =
      trainSession.weights();
  if (!weights.ok()) {
    return weights.status();
  }
  absl::Status status =
      lossSession.setWeights(std::make_shared<safetensors::File>(**weights));
  if (!status.ok()) {
    return status;
  }
  Evaluation result;
  double total = 0;
  for (const data::Batch &batch : batches) {
    if (result.batches >= maxBatches) {
      break;
    }
    if (stopSignal) {
      return std::optional<Evaluation>();
    }
    ++result.batches;
    if (batch.realTargets == 0) {
      continue;
    }
    if (!(status = lossSession.setInput("tokens", batch.tokens)).ok() ||
        !(status = lossSession.setInput("targets", batch.targets)).ok() ||
        !(status = lossSession.run()).ok()) {
      return status;
    }
    absl::StatusOr<rt::TensorView> loss = lossSession.outputView("loss");
    if (!loss.ok()) {
      return loss.status();
    }
    // The entry's loss is the mean over this batch's real targets.
    total += double(*static_cast<const float *>(loss->data)) *
             double(batch.realTargets);
    result.tokens += batch.realTargets;
  }
  result.loss = result.tokens ? total / double(result.tokens) : 0;
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began)
          .count();
  return std::optional<Evaluation>(result);
}

std::string describeEvaluation(const Evaluation &e, bool bytes) {
  std::string text =
      absl::StrFormat("loss %.4f  perplexity %.3f", e.loss, std::exp(e.loss));
  if (bytes) {
    absl::StrAppendFormat(&text, "  bits/byte %.4f", e.loss / std::log(2.0));
  }
  return text;
}

/// Continues `prompt` with the trained parameters through the "decode" entry
/// and returns the prompt and its continuation as text.
absl::StatusOr<std::string>
sampleText(const rt::Artifact &artifact, const rt::CudaDevice *device,
           const Runner &trainSession, const data::Tokenizer &tokenizer,
           const std::string &prompt, int64_t count, const Sampling &sampling,
           Random &random) {
  absl::StatusOr<std::shared_ptr<const safetensors::File>> weights =
      trainSession.weights();
  if (!weights.ok()) {
    return weights.status();
  }
  absl::StatusOr<std::unique_ptr<Runner>> decode =
      Runner::create(artifact, device, "decode",
                     std::make_shared<safetensors::File>(**weights));
  if (!decode.ok()) {
    return decode.status();
  }
  absl::StatusOr<std::vector<int32_t>> encoded = tokenizer.encode(prompt);
  if (!encoded.ok()) {
    return encoded.status();
  }
  if (encoded->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt \"", prompt, "\" encodes to no tokens"));
  }
  std::vector<int> context(encoded->begin(), encoded->end());
  std::vector<int32_t> ids(encoded->begin(), encoded->end());
  absl::Status status =
      decodeWithCache(**decode, context, count, sampling, random,
                      [&](int id) { ids.push_back(id); });
  if (!status.ok()) {
    return status;
  }
  return tokenizer.decode(ids);
}

//===----------------------------------------------------------------------===//
// The command
//===----------------------------------------------------------------------===//

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Everything a run holds, so the steps of runTrain read as a sequence.
struct Trainer {
  TrainOptions options;
  std::string command;
  std::unique_ptr<rt::CudaDevice> device; ///< --device=cuda only
  std::unique_ptr<rt::Artifact> artifact;
  std::unique_ptr<Runner> step, loss;
  data::PreparedData data;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::unique_ptr<data::TokenBatcher> batcher;
  std::vector<data::Batch> heldOut;
  RunIdentity identity;
  Progress progress;
  Metrics metrics;
  std::string checkpointPath;
  int64_t lastCheckpoint = -1; ///< the step of the checkpoint on disk
  std::optional<CurvePoint> lastEval;
  bool bytes = true;
};

/// Loads the artifact, the data and (with --resume) the checkpoint, and
/// creates the sessions.
absl::Status setUp(const std::string &artifactDir, Trainer &t) {
  TrainOptions &o = t.options;
  absl::StatusOr<std::unique_ptr<rt::Artifact>> artifact = rt::Artifact::load(
      artifactDir, o.cuda ? rt::DeviceKind::Cuda : rt::DeviceKind::Cpu);
  if (!artifact.ok()) {
    return artifact.status();
  }
  t.artifact = std::move(*artifact);
  if (o.cuda) {
    absl::StatusOr<std::unique_ptr<rt::CudaDevice>> opened =
        rt::CudaDevice::open(0);
    if (!opened.ok()) {
      return opened.status();
    }
    t.device = std::move(*opened);
  } else if (o.threads >= 0) {
    absl::StatusOr<int> previous =
        t.artifact->setNumThreads(static_cast<int>(o.threads));
    if (!previous.ok()) {
      return previous.status();
    }
  }
  absl::StatusOr<std::vector<int64_t>> shape = checkTrainable(*t.artifact);
  if (!shape.ok()) {
    return shape.status();
  }
  absl::StatusOr<std::pair<data::TokenizerKind, int64_t>> vocab =
      modelVocabulary(*t.artifact);
  if (!vocab.ok()) {
    return vocab.status();
  }

  // Data: the folder must match the model's vocabulary.
  absl::StatusOr<data::PreparedData> prepared =
      data::openPreparedData(o.dataDir);
  if (!prepared.ok()) {
    return prepared.status();
  }
  t.data = *prepared;
  absl::Status status =
      data::checkModelVocabulary(t.data, vocab->first, vocab->second);
  if (!status.ok()) {
    return status;
  }
  t.bytes = t.data.kind == data::TokenizerKind::Bytes;
  absl::StatusOr<std::vector<int32_t>> trainIds =
      data::loadSplit(t.data, data::Split::Train);
  if (!trainIds.ok()) {
    return trainIds.status();
  }
  absl::StatusOr<std::vector<int32_t>> heldOutIds =
      data::loadSplit(t.data, data::Split::HeldOut);
  if (!heldOutIds.ok()) {
    return heldOutIds.status();
  }

  t.identity.modelName = modelString(*t.artifact, "name");
  t.identity.modelSha256 =
      sha256Hex(json::serialize(t.artifact->manifest().model));
  absl::StatusOr<std::string> manifestSha =
      sha256File(absl::StrCat(t.artifact->dir(), "/manifest.json"));
  t.identity.artifactSha256 = manifestSha.ok() ? *manifestSha : "";
  t.identity.dataSha256 = idsSha256(*trainIds);
  t.identity.vocabulary = absl::StrCat(data::tokenizerKindName(t.data.kind),
                                       " (", t.data.vocabSize, " ids)");
  t.identity.batch = (*shape)[0];
  t.identity.seqLen = (*shape)[1];

  // The checkpoint folder: created, locked, cleared of a killed run's
  // temporaries.
  std::error_code error;
  std::filesystem::create_directories(o.checkpointDir, error);
  if (error) {
    return absl::PermissionDeniedError(absl::StrCat(
        o.checkpointDir,
        ": cannot create the checkpoint folder: ", error.message()));
  }
  if (!(status = lockCheckpointDir(o.checkpointDir)).ok()) {
    return status;
  }
  removeStaleTemporaries(o.checkpointDir);
  t.checkpointPath = absl::StrCat(o.checkpointDir, "/", kCheckpointFile);

  // The parameters and optimizer state: the artifact's initial weights and
  // zero moments, or the checkpoint's.
  std::shared_ptr<const safetensors::File> weights = t.artifact->weights();
  std::vector<std::pair<std::string, Tensor>> states;
  t.progress.totalSteps = o.steps;
  t.progress.seed = static_cast<uint64_t>(o.seed);
  // The sampling generator: its own stream, derived from the seed.
  t.progress.rngState = static_cast<uint64_t>(o.seed) ^ 0x5bd1e9955bd1e995ULL;
  absl::StatusOr<std::unique_ptr<Runner>> session =
      Runner::create(*t.artifact, t.device.get(), "train_step", weights);
  if (!session.ok()) {
    return session.status();
  }
  t.step = std::move(*session);
  if (o.resume) {
    absl::StatusOr<Checkpoint> checkpoint = readCheckpoint(
        t.checkpointPath, *t.artifact, t.identity, t.step->stateNames());
    if (!checkpoint.ok()) {
      return checkpoint.status();
    }
    const Progress &saved = checkpoint->progress;
    if (o.stepsGiven && o.steps != saved.totalSteps) {
      return absl::FailedPreconditionError(absl::StrCat(
          t.checkpointPath, " belongs to a run of --steps ", saved.totalSteps,
          " (the learning-rate schedule's length); resume it with the same "
          "--steps, or leave --steps out"));
    }
    if (o.seedGiven && static_cast<uint64_t>(o.seed) != saved.seed) {
      return absl::FailedPreconditionError(absl::StrCat(
          t.checkpointPath, " belongs to a run of --seed ", saved.seed,
          "; resume it with the same --seed, or leave --seed out"));
    }
    if (!checkpoint->artifactSha256.empty() &&
        checkpoint->artifactSha256 != t.identity.artifactSha256) {
      std::fprintf(stderr,
                   "synth-run train: note: %s was written with another "
                   "artifact of the same model (manifest sha256 %s...); "
                   "continuing with %s\n",
                   t.checkpointPath.c_str(),
                   checkpoint->artifactSha256.substr(0, 12).c_str(),
                   t.artifact->dir().c_str());
    }
    t.progress = saved;
    o.steps = saved.totalSteps;
    o.seed = static_cast<int64_t>(saved.seed);
    weights = checkpoint->weights;
    states = std::move(checkpoint->states);
    t.lastCheckpoint = saved.step;
    if (!(status = t.step->setWeights(weights)).ok()) {
      return status;
    }
    for (const auto &[name, tensor] : states) {
      if (!(status = t.step->setState(name, tensor)).ok()) {
        return absl::DataLossError(
            absl::StrCat(t.checkpointPath, ": ", status.message()));
      }
    }
  } else if (::access(t.checkpointPath.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(
        t.checkpointPath,
        " exists: continue that run with --resume, or train into another "
        "--checkpoint folder (or remove it)"));
  }

  absl::StatusOr<std::unique_ptr<Runner>> loss =
      Runner::create(*t.artifact, t.device.get(), "loss");
  if (!loss.ok()) {
    return loss.status();
  }
  t.loss = std::move(*loss);
  // The tokenizer only serves the sample: without one (a build without
  // libsentencepiece), training goes on and the sample is skipped.
  if (o.sampleTokens > 0) {
    absl::StatusOr<std::unique_ptr<data::Tokenizer>> tokenizer =
        data::openTokenizer(t.data);
    if (tokenizer.ok()) {
      t.tokenizer = std::move(*tokenizer);
    } else {
      std::fprintf(stderr, "synth-run train: note: no sample at the end: %s\n",
                   std::string(tokenizer.status().message()).c_str());
    }
  }

  t.batcher = std::make_unique<data::TokenBatcher>(
      std::move(*trainIds), t.identity.batch, t.identity.seqLen,
      static_cast<uint64_t>(o.seed));
  t.batcher->restore(t.progress.data);
  t.heldOut =
      data::evaluationBatches(*heldOutIds, t.identity.batch, t.identity.seqLen);
  std::optional<int64_t> resumeAt;
  if (o.resume) {
    resumeAt = t.progress.step;
  }
  status = t.metrics.open(o.metricsPath, resumeAt);
  if (status.ok() && !t.metrics.eval().empty() &&
      t.metrics.eval().back().step == t.progress.step) {
    // Evaluated at the checkpoint's step already (a finished run resumed).
    t.lastEval = t.metrics.eval().back();
  }
  return status;
}

/// Test hook: SYNTH_TRAIN_PAUSE_AFTER_STEP=N stops the process (SIGSTOP)
/// after step N and its checkpoint, so a test can kill or signal it at a
/// known point (docs/training.md).
int64_t pauseAfterStep() {
  const char *text = std::getenv("SYNTH_TRAIN_PAUSE_AFTER_STEP");
  int64_t step = -1;
  if (!text || !absl::SimpleAtoi(text, &step)) {
    return -1;
  }
  return step;
}

} // namespace

const char kTrainSummary[] =
    "Trains a language model: runs the \"train_step\" entry (synthc --train) "
    "over\nthe train split of a prepared corpus (scripts/prepare_kjv.py, "
    "docs/data-format.md)\nin a deterministic order, with a progress bar on "
    "stderr, held-out evaluation\nevery --eval-every steps, metrics as JSON "
    "lines and a loss curve as SVG.\nCheckpoints (parameters, AdamW moments, "
    "data position, sampling state) are\nwritten atomically every "
    "--checkpoint-every steps, at the end and on SIGINT or\nSIGTERM (exit "
    "130 or 143); --resume continues bit for bit. A NaN or infinite\nloss "
    "stops the run (exit 1) and keeps the last good checkpoint. At the end: "
    "the\nheld-out loss and perplexity, and a sample continuing --prompt. "
    "Details:\ndocs/training.md.";

std::vector<FlagSpec> trainFlags() {
  return {
      {"data", "DIR", "prepared corpus folder (train and held-out splits)"},
      {"steps", "N",
       "training steps (default 1000; the learning-rate schedule's length)"},
      {"time-limit", "SECONDS",
       "stop cleanly after this much wall time (checkpoint, evaluation, "
       "sample)"},
      {"eval-every", "K",
       "held-out evaluation every K steps (default 100; 0: "
       "only at the end)"},
      {"eval-batches", "M",
       "evaluate on the first M held-out batches "
       "(default: all)"},
      {"checkpoint", "DIR",
       "checkpoint folder (default: ARTIFACT with .synth replaced by .ckpt)"},
      {"checkpoint-every", "K",
       "write a checkpoint every K steps (default 100; 0: only at the end)"},
      {"resume", nullptr, "continue from DIR/checkpoint.safetensors"},
      {"seed", "S", "data order and sampling seed (default 0)"},
      {"metrics", "FILE", "metrics as JSON lines (default: DIR/metrics.jsonl)"},
      {"plot", "FILE.svg", "loss curve (default: DIR/loss.svg)"},
      {"sample-tokens", "N",
       "tokens to generate at the end (default 200; 0: "
       "no sample)"},
      {"prompt", "TEXT", "the sample's prompt (default \"And\")"},
      {"temperature", "T", "sampling temperature (default 0.8; 0: greedy)"},
      {"top-k", "K", "sample among the K most likely tokens (default 40)"},
      {"threads", "N",
       "kernel threads (0: one per CPU; default: Halide's, HL_NUM_THREADS or "
       "one per CPU)"},
      {"device", "cpu|cuda",
       "where to train: cpu (the default) or cuda (a --target=cuda artifact "
       "built with --train)"},
      {"log-every", "K",
       "a metrics record (and, off a terminal, a progress line) every K "
       "steps (default 10)"},
  };
}

void keepCheckpointParameters(safetensors::File &file) {
  bool checkpoint = false;
  for (const auto &[key, value] : file.metadata) {
    checkpoint = checkpoint || (key == "format" && value == kCheckpointFormat);
  }
  if (!checkpoint) {
    return;
  }
  const std::string prefix = kStatePrefix;
  file.tensors.erase(std::remove_if(file.tensors.begin(), file.tensors.end(),
                                    [&](const auto &tensor) {
                                      return tensor.first.rfind(prefix, 0) == 0;
                                    }),
                     file.tensors.end());
}

int runTrain(const Args &args) {
  Trainer t;
  t.command = args.command;
  if (std::optional<std::string> bad = parseTrainOptions(args, t.options)) {
    return usageError(args.command, *bad);
  }
  const TrainOptions &o = t.options;
  absl::Status status = setUp(args.artifact, t);
  if (!status.ok()) {
    return runError(args.command, status);
  }
  ProgressBar bar(o.steps, o.logEvery, o.timeLimit);
  const int64_t tokensPerStep = t.identity.batch * t.identity.seqLen;
  const int64_t evalBatches =
      std::min<int64_t>(o.evalBatches, static_cast<int64_t>(t.heldOut.size()));
  std::fprintf(
      stderr,
      "synth-run train: model \"%s\", batches of [%lld, %lld], %s\n"
      "  corpus %s: %s, %lld train windows (an epoch is %lld steps), %lld "
      "held-out batches (evaluating %lld)\n"
      "  %s step %lld of %lld; checkpoints every %lld steps in %s\n",
      t.identity.modelName.c_str(), static_cast<long long>(t.identity.batch),
      static_cast<long long>(t.identity.seqLen),
      o.threads >= 0 ? absl::StrCat("threads ", o.threads).c_str()
                     : "Halide's default thread count",
      t.data.dir.c_str(), t.identity.vocabulary.c_str(),
      static_cast<long long>(t.batcher->examplesPerEpoch()),
      static_cast<long long>(
          (t.batcher->examplesPerEpoch() + t.identity.batch - 1) /
          t.identity.batch),
      static_cast<long long>(t.heldOut.size()),
      static_cast<long long>(evalBatches),
      o.resume ? "resuming after" : "starting at",
      static_cast<long long>(o.resume ? t.progress.step : 1),
      static_cast<long long>(o.steps),
      static_cast<long long>(o.checkpointEvery), o.checkpointDir.c_str());

  // What is on disk, for messages about a failed or diverged run.
  auto keptCheckpoint = [&]() {
    return t.lastCheckpoint >= 0
               ? absl::StrFormat("the last good checkpoint (step %d) is kept "
                                 "at %s",
                                 t.lastCheckpoint, t.checkpointPath)
               : std::string("no checkpoint was written");
  };
  // One checkpoint write, reported on the progress display.
  auto checkpoint = [&]() -> absl::Status {
    auto began = Clock::now();
    t.progress.data = t.batcher->state();
    absl::Status s =
        writeCheckpoint(o.checkpointDir, *t.step, t.identity, t.progress);
    if (!s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(s.message(), "; ", keptCheckpoint()));
    }
    t.lastCheckpoint = t.progress.step;
    bar.message(absl::StrFormat("step %d: checkpoint written to %s (%.2f s)",
                                t.progress.step, t.checkpointPath,
                                secondsSince(began)));
    return absl::OkStatus();
  };
  auto writePlot = [&]() {
    std::string title = absl::StrCat(
        t.identity.modelName.empty() ? "model" : t.identity.modelName,
        ": loss per token");
    absl::Status s = writeFileAtomic(
        o.plotPath, lossCurveSvg(title, t.metrics.train(), t.metrics.eval()));
    if (!s.ok()) {
      bar.message(absl::StrCat("synth-run train: cannot write the plot: ",
                               s.message()));
    }
  };
  // Held-out evaluation at the current step; nullopt when a signal cut it
  // short.
  auto heldOutEvaluation = [&]() -> absl::StatusOr<std::optional<Evaluation>> {
    absl::StatusOr<std::optional<Evaluation>> e =
        evaluate(*t.loss, *t.step, t.heldOut, evalBatches);
    if (e.ok() && e->has_value()) {
      t.metrics.logEval(t.progress.step, (*e)->loss, (*e)->tokens, t.bytes);
      t.lastEval = CurvePoint{t.progress.step, (*e)->loss};
    }
    return e;
  };

  installStopHandlers();
  const int64_t pauseAt = pauseAfterStep();
  const double elapsedBefore = t.progress.elapsedSeconds;
  const auto runStart = Clock::now();
  double stepSeconds = 0; // training time of this run (no evaluation)
  int64_t stepsThisRun = 0;
  double intervalLoss = 0;
  int64_t intervalSteps = 0;
  double lastLearningRate = 0, lastGradNorm = 0;
  Tensor stepInput = Tensor::zeros(DType::I32, {});
  Tensor totalInput = Tensor::zeros(DType::I32, {});
  totalInput.data<int32_t>()[0] = static_cast<int32_t>(o.steps);
  bool timeUp = false;

  while (t.progress.step < o.steps) {
    if (stopSignal) {
      break;
    }
    if (o.timeLimit > 0 && secondsSince(runStart) >= o.timeLimit) {
      timeUp = true;
      break;
    }
    const int64_t step = t.progress.step + 1;
    auto began = Clock::now();
    data::Batch batch = t.batcher->next();
    stepInput.data<int32_t>()[0] = static_cast<int32_t>(step);
    if (!(status = t.step->setInput("tokens", batch.tokens)).ok() ||
        !(status = t.step->setInput("targets", batch.targets)).ok() ||
        !(status = t.step->setInput("step", stepInput)).ok() ||
        !(status = t.step->setInput("total_steps", totalInput)).ok() ||
        !(status = t.step->run()).ok()) {
      bar.clear();
      return runError(
          args.command,
          absl::Status(status.code(),
                       absl::StrCat("step ", step, ": ", status.message())));
    }
    auto scalar = [&](const char *name) {
      absl::StatusOr<rt::TensorView> view = t.step->outputView(name);
      return view.ok() ? double(*static_cast<const float *>(view->data))
                       : std::nan("");
    };
    const double loss = scalar("loss");
    const double learningRate = scalar("learning_rate");
    const double gradNorm = std::sqrt(scalar("grad_sq_norm"));
    const double seconds = secondsSince(began);
    if (!std::isfinite(loss) || !std::isfinite(gradNorm)) {
      // The parameters in the session are already updated from a
      // non-finite value; only the checkpoint on disk is worth keeping.
      bar.clear();
      writePlot();
      const bool lossBad = !std::isfinite(loss);
      const double value = lossBad ? loss : gradNorm;
      return runError(
          args.command,
          absl::InternalError(absl::StrFormat(
              "step %d: the %s is %s: training diverged and stopped without "
              "writing a checkpoint; %s. Lower the learning rate (synthc "
              "--lr, --warmup-steps) or clip gradients (--max-grad-norm), "
              "recompile, and train again",
              step, lossBad ? "loss" : "gradient norm",
              std::isnan(value) ? "NaN"
              : value > 0       ? "+Inf"
                                : "-Inf",
              keptCheckpoint())));
    }
    t.progress.step = step;
    t.progress.tokensSeen += batch.realTargets;
    stepSeconds += seconds;
    ++stepsThisRun;
    t.progress.elapsedSeconds = elapsedBefore + secondsSince(runStart);
    intervalLoss += loss;
    ++intervalSteps;
    lastLearningRate = learningRate;
    lastGradNorm = gradNorm;
    bar.update(step, loss, learningRate, gradNorm, seconds, tokensPerStep,
               t.progress.elapsedSeconds, secondsSince(runStart));
    if (step % o.logEvery == 0 || step == o.steps) {
      // The record's loss is the mean of the steps since the last record.
      t.metrics.logTrain(step, intervalLoss / double(intervalSteps),
                         learningRate, gradNorm, bar.tokensPerSecond(),
                         t.progress.elapsedSeconds);
      intervalLoss = 0;
      intervalSteps = 0;
    }
    if (o.evalEvery > 0 && step % o.evalEvery == 0 && !t.heldOut.empty()) {
      absl::StatusOr<std::optional<Evaluation>> e = heldOutEvaluation();
      if (!e.ok()) {
        bar.clear();
        return runError(args.command, e.status());
      }
      if (e->has_value()) {
        bar.message(absl::StrFormat("step %d: held-out %s (%d tokens, %.2f s)",
                                    step, describeEvaluation(**e, t.bytes),
                                    (*e)->tokens, (*e)->seconds));
      }
    }
    if ((o.checkpointEvery > 0 && step % o.checkpointEvery == 0) ||
        step == o.steps) {
      if (!(status = checkpoint()).ok()) {
        bar.clear();
        return runError(args.command, status);
      }
    }
    if (step == pauseAt) {
      std::fflush(stderr);
      ::raise(SIGSTOP);
    }
  }
  bar.clear();
  if (intervalSteps > 0) {
    // Stopped between records: the last steps still belong on the curve.
    t.metrics.logTrain(t.progress.step, intervalLoss / double(intervalSteps),
                       lastLearningRate, lastGradNorm, bar.tokensPerSecond(),
                       t.progress.elapsedSeconds);
  }

  // Stopped early (signal or time limit): save where the run is.
  if (t.lastCheckpoint != t.progress.step) {
    if (!(status = checkpoint()).ok()) {
      return runError(args.command, status);
    }
  }
  writePlot();
  if (stopSignal) {
    std::fprintf(stderr,
                 "synth-run train: stopped by %s after step %lld of %lld; "
                 "checkpoint %s (continue with --resume)\n",
                 signalName(stopSignal),
                 static_cast<long long>(t.progress.step),
                 static_cast<long long>(o.steps), t.checkpointPath.c_str());
    return 128 + stopSignal;
  }
  if (timeUp) {
    std::fprintf(stderr,
                 "synth-run train: time limit of %g s reached after step %lld "
                 "of %lld; checkpoint %s (continue with --resume)\n",
                 o.timeLimit, static_cast<long long>(t.progress.step),
                 static_cast<long long>(o.steps), t.checkpointPath.c_str());
  }
  std::fprintf(
      stderr,
      "synth-run train: %lld steps in this run, %.1f s of training "
      "(%s tokens/s); metrics %s, plot %s\n",
      static_cast<long long>(stepsThisRun), stepSeconds,
      shortRate(stepSeconds > 0
                    ? double(tokensPerStep) * double(stepsThisRun) / stepSeconds
                    : 0)
          .c_str(),
      t.metrics.path().c_str(), o.plotPath.c_str());

  // The final held-out evaluation (reusing this step's, if any).
  if (!t.heldOut.empty()) {
    Evaluation final;
    if (t.lastEval && t.lastEval->step == t.progress.step) {
      final.loss = t.lastEval->loss;
    } else {
      absl::StatusOr<std::optional<Evaluation>> e = heldOutEvaluation();
      if (!e.ok()) {
        return runError(args.command, e.status());
      }
      if (!e->has_value()) {
        return 128 + stopSignal;
      }
      final = **e;
      writePlot();
    }
    std::printf("held-out after step %lld: %s\n",
                static_cast<long long>(t.progress.step),
                describeEvaluation(final, t.bytes).c_str());
  }
  if (o.sampleTokens > 0 && t.artifact->entry("decode") && t.tokenizer) {
    Random random(t.progress.rngState);
    absl::StatusOr<std::string> text =
        sampleText(*t.artifact, t.device.get(), *t.step, *t.tokenizer, o.prompt,
                   o.sampleTokens, o.sampling, random);
    if (!text.ok()) {
      return runError(args.command, text.status());
    }
    std::string how =
        o.sampling.temperature == 0
            ? std::string("greedy")
            : absl::StrFormat(
                  "temperature %g, top-k %s", o.sampling.temperature,
                  o.sampling.topK ? std::to_string(o.sampling.topK) : "all");
    std::printf("sample (%lld tokens, %s):\n%s\n",
                static_cast<long long>(o.sampleTokens), how.c_str(),
                text->c_str());
  }
  return 0;
}

} // namespace synth::run
