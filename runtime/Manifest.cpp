//===- Manifest.cpp - manifest.json reader, validator and writer ----------===//
//
// Reading happens in two passes. The first walks the JSON and fills the
// structs, checking only what each value is by itself (types, required and
// unknown keys, enum spellings, signs). The second, validateManifest, checks
// what values mean together (buffer indices, parameter and input/output
// references, arena bounds and alignment); it runs on the structs so that the
// compiler can run it before writing, and finds its way back to a line and
// column through a table of the positions of every JSON path.
//
//===----------------------------------------------------------------------===//

#include "runtime/Manifest.h"

#include "runtime/FileUtil.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace synth::rt {

#define SYNTH_RETURN_IF_ERROR(expr)                                            \
  do {                                                                         \
    absl::Status status_ = (expr);                                             \
    if (!status_.ok()) {                                                       \
      return status_;                                                          \
    }                                                                          \
  } while (false)

const char *storageName(Storage storage) {
  switch (storage) {
  case Storage::Input:
    return "input";
  case Storage::Param:
    return "param";
  case Storage::Output:
    return "output";
  case Storage::Arena:
    return "arena";
  case Storage::Derived:
    return "derived";
  case Storage::State:
    return "state";
  }
  return "?";
}

int64_t BufferInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    n *= d;
  }
  return n;
}

const Binding *EntryInfo::findInput(const std::string &name) const {
  for (const Binding &binding : inputs) {
    if (binding.name == name) {
      return &binding;
    }
  }
  return nullptr;
}

const Binding *EntryInfo::findOutput(const std::string &name) const {
  for (const Binding &binding : outputs) {
    if (binding.name == name) {
      return &binding;
    }
  }
  return nullptr;
}

const FileInfo *Manifest::findFile(const std::string &name) const {
  for (const FileInfo &file : files) {
    if (file.name == name) {
      return &file;
    }
  }
  return nullptr;
}

const ParameterInfo *Manifest::findParameter(const std::string &name) const {
  for (const ParameterInfo &param : parameters) {
    if (param.name == name) {
      return &param;
    }
  }
  return nullptr;
}

const CudaKernelInfo *CudaInfo::findKernel(const std::string &name) const {
  for (const CudaKernelInfo &kernel : kernels) {
    if (kernel.name == name) {
      return &kernel;
    }
  }
  return nullptr;
}

const EntryInfo *Manifest::findEntry(const std::string &name) const {
  for (const EntryInfo &entry : entries) {
    if (entry.name == name) {
      return &entry;
    }
  }
  return nullptr;
}

namespace {

//===----------------------------------------------------------------------===//
// JSON paths and positions
//===----------------------------------------------------------------------===//

bool isIdentifier(const std::string &text) {
  if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0]))) {
    return false;
  }
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

/// `path.key`, or `path["key"]` when the key is not an identifier (file
/// names such as kernels.so), so that every path reads back unambiguously.
std::string childPath(const std::string &path, const std::string &key) {
  if (!isIdentifier(key)) {
    return absl::StrCat(path, "[", json::quote(key), "]");
  }
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

std::string indexPath(const std::string &path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

using PositionTable = std::map<std::string, std::pair<int, int>>;

/// Records the position of every value under `value` by its path; the model
/// description is skipped (it is carried verbatim and never validated here).
void recordPositions(const json::Value &value, const std::string &path,
                     PositionTable &table) {
  table[path] = {value.line(), value.column()};
  if (path == "model") {
    return;
  }
  if (value.isObject()) {
    for (const auto &[key, member] : value.members()) {
      recordPositions(member, childPath(path, key), table);
    }
  } else if (value.isArray()) {
    for (size_t i = 0; i < value.items().size(); ++i) {
      recordPositions(value.items()[i], indexPath(path, i), table);
    }
  }
}

/// Formats "<source>[:line:column]: [path: ]what".
class ErrorReporter {
public:
  ErrorReporter(const std::string &source, const PositionTable *positions)
      : source_(source), positions_(positions) {}

  absl::Status fail(const std::string &path, const std::string &what) const {
    std::string where = source_;
    if (std::optional<std::pair<int, int>> pos = lookup(path)) {
      absl::StrAppend(&where, ":", pos->first, ":", pos->second);
    }
    return absl::InvalidArgumentError(
        path.empty() ? absl::StrCat(where, ": ", what)
                     : absl::StrCat(where, ": ", path, ": ", what));
  }

  absl::Status fail(const json::Value &value, const std::string &path,
                    const std::string &what) const {
    std::string where =
        absl::StrCat(source_, ":", value.line(), ":", value.column());
    return absl::InvalidArgumentError(
        path.empty() ? absl::StrCat(where, ": ", what)
                     : absl::StrCat(where, ": ", path, ": ", what));
  }

private:
  /// The position of `path`, or of its closest recorded ancestor.
  std::optional<std::pair<int, int>> lookup(std::string path) const {
    if (!positions_) {
      return std::nullopt;
    }
    while (true) {
      auto it = positions_->find(path);
      if (it != positions_->end()) {
        return it->second;
      }
      size_t cut = path.find_last_of(".[");
      if (cut == std::string::npos) {
        return std::nullopt;
      }
      path.resize(cut);
    }
  }

  const std::string &source_;
  const PositionTable *positions_;
};

std::string describe(const json::Value &value) {
  if (value.isString()) {
    return absl::StrCat("string ", json::quote(value.asString()));
  }
  if (value.isNumber()) {
    return absl::StrCat("number ", json::serialize(value));
  }
  return json::Value::kindName(value.kind());
}

//===----------------------------------------------------------------------===//
// First pass: JSON -> structs
//===----------------------------------------------------------------------===//

class Reader {
public:
  explicit Reader(const ErrorReporter &errors) : errors_(errors) {}

  absl::Status read(const json::Value &root, Manifest &manifest) {
    if (!root.isObject()) {
      return errors_.fail(
          root, "",
          absl::StrCat("a manifest is a JSON object, got ", describe(root)));
    }
    // Format and version come first: a newer manifest may legitimately have
    // keys this runtime does not know, and the version says so best.
    const json::Value *format = root.find("format");
    if (!format) {
      return errors_.fail(root, "",
                          "missing key \"format\" (not a synthc artifact "
                          "manifest)");
    }
    if (!format->isString() || format->asString() != kArtifactFormat) {
      return errors_.fail(*format, "format",
                          absl::StrCat("expected \"", kArtifactFormat,
                                       "\", got ", describe(*format),
                                       " (not a synthc artifact manifest)"));
    }
    const json::Value *version = root.find("version");
    if (!version) {
      return errors_.fail(root, "", "missing key \"version\"");
    }
    if (!version->isInteger()) {
      return errors_.fail(
          *version, "version",
          absl::StrCat("expected an integer, got ", describe(*version)));
    }
    if (version->asInt() != kArtifactVersion) {
      return errors_.fail(
          *version, "version",
          absl::StrCat("unsupported artifact version ", version->asInt(),
                       " (this runtime reads ", kArtifactVersion, ")"));
    }
    manifest.format = format->asString();
    manifest.version = version->asInt();
    SYNTH_RETURN_IF_ERROR(checkKeys(root, "",
                                    {"format", "version", "model", "target",
                                     "files", "parameters", "entries"},
                                    {"cuda", "schedule"}));
    const json::Value &model = *root.find("model");
    if (!model.isObject()) {
      return errors_.fail(model, "model",
                          absl::StrCat("expected the model description "
                                       "(an object), got ",
                                       describe(model)));
    }
    manifest.model = model;
    if (const json::Value *schedule = root.find("schedule")) {
      if (!schedule->isObject()) {
        return errors_.fail(*schedule, "schedule",
                            absl::StrCat("expected the schedule the kernels "
                                         "were built with (an object), got ",
                                         describe(*schedule)));
      }
      manifest.schedule = *schedule;
    }
    SYNTH_RETURN_IF_ERROR(readTarget(*root.find("target"), manifest.target));
    // The "cuda" key belongs to cuda targets, and a cuda target needs it (it
    // holds every kernel's launch configuration).
    const json::Value *cuda = root.find("cuda");
    if (manifest.target.kind == "cuda" && !cuda) {
      return errors_.fail(root, "",
                          "missing key \"cuda\" (a cuda target's kernels "
                          "and launch configurations)");
    }
    if (cuda && manifest.target.kind != "cuda") {
      return errors_.fail(*cuda, "cuda",
                          absl::StrCat("only a cuda target has a \"cuda\" "
                                       "key; this one is ",
                                       json::quote(manifest.target.kind)));
    }
    if (cuda) {
      manifest.cuda.emplace();
      SYNTH_RETURN_IF_ERROR(readCuda(*cuda, *manifest.cuda));
    }
    SYNTH_RETURN_IF_ERROR(readFiles(*root.find("files"), manifest.files));
    SYNTH_RETURN_IF_ERROR(
        readParameters(*root.find("parameters"), manifest.parameters));
    return readEntries(*root.find("entries"), manifest.entries);
  }

private:
  /// Every key of `required` must be present, every key must be in
  /// `required` or `optional`.
  absl::Status checkKeys(const json::Value &object, const std::string &path,
                         std::initializer_list<const char *> required,
                         std::initializer_list<const char *> optional) {
    if (!object.isObject()) {
      return errors_.fail(
          object, path,
          absl::StrCat("expected an object, got ", describe(object)));
    }
    for (const auto &[key, value] : object.members()) {
      bool known = false;
      for (const char *name : required) {
        known = known || key == name;
      }
      for (const char *name : optional) {
        known = known || key == name;
      }
      if (!known) {
        std::vector<std::string> all(required.begin(), required.end());
        all.insert(all.end(), optional.begin(), optional.end());
        return errors_.fail(
            value, childPath(path, key),
            absl::StrCat("unknown key ", json::quote(key),
                         " (expected one of: ", absl::StrJoin(all, ", "), ")"));
      }
    }
    for (const char *name : required) {
      if (!object.find(name)) {
        return errors_.fail(object, path,
                            absl::StrCat("missing key \"", name, "\""));
      }
    }
    return absl::OkStatus();
  }

  absl::Status readString(const json::Value &value, const std::string &path,
                          std::string &out) {
    if (!value.isString()) {
      return errors_.fail(
          value, path,
          absl::StrCat("expected a string, got ", describe(value)));
    }
    out = value.asString();
    return absl::OkStatus();
  }

  absl::Status readNonNegative(const json::Value &value,
                               const std::string &path, int64_t &out) {
    if (!value.isInteger() || value.asInt() < 0) {
      return errors_.fail(value, path,
                          absl::StrCat("expected a non-negative integer, got ",
                                       describe(value)));
    }
    out = value.asInt();
    return absl::OkStatus();
  }

  absl::Status readArray(const json::Value &value, const std::string &path) {
    if (!value.isArray()) {
      return errors_.fail(
          value, path,
          absl::StrCat("expected an array, got ", describe(value)));
    }
    return absl::OkStatus();
  }

  absl::Status readStrings(const json::Value &value, const std::string &path,
                           std::vector<std::string> &out) {
    SYNTH_RETURN_IF_ERROR(readArray(value, path));
    for (size_t i = 0; i < value.items().size(); ++i) {
      out.emplace_back();
      SYNTH_RETURN_IF_ERROR(
          readString(value.items()[i], indexPath(path, i), out.back()));
    }
    return absl::OkStatus();
  }

  absl::Status readShape(const json::Value &value, const std::string &path,
                         std::vector<int64_t> &out) {
    SYNTH_RETURN_IF_ERROR(readArray(value, path));
    for (size_t i = 0; i < value.items().size(); ++i) {
      const json::Value &dim = value.items()[i];
      if (!dim.isInteger() || dim.asInt() <= 0) {
        return errors_.fail(
            dim, indexPath(path, i),
            absl::StrCat("expected a positive dimension, got ", describe(dim)));
      }
      out.push_back(dim.asInt());
    }
    return absl::OkStatus();
  }

  absl::Status readDType(const json::Value &value, const std::string &path,
                         DType &out) {
    std::string name;
    SYNTH_RETURN_IF_ERROR(readString(value, path, name));
    std::optional<DType> dtype = parseDType(name);
    if (!dtype ||
        (*dtype != DType::F32 && *dtype != DType::I32 && *dtype != DType::U8)) {
      return errors_.fail(value, path,
                          absl::StrCat("unsupported dtype ", json::quote(name),
                                       " (an artifact uses F32, I32 or U8)"));
    }
    out = *dtype;
    return absl::OkStatus();
  }

  absl::Status readTarget(const json::Value &value, TargetInfo &target) {
    SYNTH_RETURN_IF_ERROR(
        checkKeys(value, "target",
                  {"kind", "arch", "required_features", "variants"}, {}));
    SYNTH_RETURN_IF_ERROR(
        readString(*value.find("kind"), "target.kind", target.kind));
    SYNTH_RETURN_IF_ERROR(
        readString(*value.find("arch"), "target.arch", target.arch));
    SYNTH_RETURN_IF_ERROR(readStrings(*value.find("required_features"),
                                      "target.required_features",
                                      target.requiredFeatures));
    return readStrings(*value.find("variants"), "target.variants",
                       target.variants);
  }

  absl::Status readDim3(const json::Value &value, const std::string &path,
                        std::array<int64_t, 3> &out) {
    if (!value.isArray() || value.items().size() != 3) {
      return errors_.fail(value, path,
                          absl::StrCat("expected three integers [x, y, z], "
                                       "got ",
                                       describe(value)));
    }
    for (size_t i = 0; i < 3; ++i) {
      const json::Value &item = value.items()[i];
      if (!item.isInteger()) {
        return errors_.fail(
            item, indexPath(path, i),
            absl::StrCat("expected an integer, got ", describe(item)));
      }
      out[i] = item.asInt();
    }
    return absl::OkStatus();
  }

  absl::Status readCuda(const json::Value &value, CudaInfo &cuda) {
    SYNTH_RETURN_IF_ERROR(checkKeys(value, "cuda", {"arch", "abi", "kernels"},
                                    {"skipped_entries", "precision"}));
    SYNTH_RETURN_IF_ERROR(
        readString(*value.find("arch"), "cuda.arch", cuda.arch));
    SYNTH_RETURN_IF_ERROR(readString(*value.find("abi"), "cuda.abi", cuda.abi));
    if (const json::Value *precision = value.find("precision")) {
      SYNTH_RETURN_IF_ERROR(
          readString(*precision, "cuda.precision", cuda.precision));
    }
    if (const json::Value *skipped = value.find("skipped_entries")) {
      SYNTH_RETURN_IF_ERROR(
          readStrings(*skipped, "cuda.skipped_entries", cuda.skippedEntries));
    }
    const json::Value &kernels = *value.find("kernels");
    if (!kernels.isObject()) {
      return errors_.fail(kernels, "cuda.kernels",
                          absl::StrCat("expected an object of kernels, got ",
                                       describe(kernels)));
    }
    for (const auto &[name, info] : kernels.members()) {
      std::string path = childPath("cuda.kernels", name);
      SYNTH_RETURN_IF_ERROR(checkKeys(
          info, path, {"entry", "ptx", "grid", "block", "shared_bytes"},
          {"cubin", "anchor"}));
      CudaKernelInfo kernel;
      kernel.name = name;
      SYNTH_RETURN_IF_ERROR(readString(*info.find("entry"),
                                       childPath(path, "entry"), kernel.entry));
      SYNTH_RETURN_IF_ERROR(
          readString(*info.find("ptx"), childPath(path, "ptx"), kernel.ptx));
      if (const json::Value *cubin = info.find("cubin")) {
        SYNTH_RETURN_IF_ERROR(
            readString(*cubin, childPath(path, "cubin"), kernel.cubin));
        if (kernel.cubin.empty()) {
          return errors_.fail(*cubin, childPath(path, "cubin"),
                              "empty file name (leave the key out when there "
                              "is no cubin)");
        }
      }
      if (const json::Value *anchor = info.find("anchor")) {
        SYNTH_RETURN_IF_ERROR(
            readString(*anchor, childPath(path, "anchor"), kernel.anchor));
      }
      SYNTH_RETURN_IF_ERROR(
          readDim3(*info.find("grid"), childPath(path, "grid"), kernel.grid));
      SYNTH_RETURN_IF_ERROR(readDim3(*info.find("block"),
                                     childPath(path, "block"), kernel.block));
      SYNTH_RETURN_IF_ERROR(readNonNegative(*info.find("shared_bytes"),
                                            childPath(path, "shared_bytes"),
                                            kernel.sharedBytes));
      cuda.kernels.push_back(std::move(kernel));
    }
    return absl::OkStatus();
  }

  absl::Status readFiles(const json::Value &value,
                         std::vector<FileInfo> &files) {
    if (!value.isObject()) {
      return errors_.fail(
          value, "files",
          absl::StrCat("expected an object of files, got ", describe(value)));
    }
    for (const auto &[name, info] : value.members()) {
      std::string path = childPath("files", name);
      SYNTH_RETURN_IF_ERROR(checkKeys(info, path, {"sha256", "bytes"}, {}));
      FileInfo file;
      file.name = name;
      SYNTH_RETURN_IF_ERROR(readString(*info.find("sha256"),
                                       childPath(path, "sha256"), file.sha256));
      SYNTH_RETURN_IF_ERROR(readNonNegative(
          *info.find("bytes"), childPath(path, "bytes"), file.bytes));
      files.push_back(std::move(file));
    }
    return absl::OkStatus();
  }

  absl::Status readParameters(const json::Value &value,
                              std::vector<ParameterInfo> &parameters) {
    SYNTH_RETURN_IF_ERROR(readArray(value, "parameters"));
    for (size_t i = 0; i < value.items().size(); ++i) {
      const json::Value &info = value.items()[i];
      std::string path = indexPath("parameters", i);
      SYNTH_RETURN_IF_ERROR(
          checkKeys(info, path, {"name", "shape", "dtype", "trainable"}, {}));
      ParameterInfo param;
      SYNTH_RETURN_IF_ERROR(
          readString(*info.find("name"), childPath(path, "name"), param.name));
      SYNTH_RETURN_IF_ERROR(readShape(*info.find("shape"),
                                      childPath(path, "shape"), param.shape));
      SYNTH_RETURN_IF_ERROR(readDType(*info.find("dtype"),
                                      childPath(path, "dtype"), param.dtype));
      const json::Value &trainable = *info.find("trainable");
      if (!trainable.isBool()) {
        return errors_.fail(
            trainable, childPath(path, "trainable"),
            absl::StrCat("expected true or false, got ", describe(trainable)));
      }
      param.trainable = trainable.asBool();
      parameters.push_back(std::move(param));
    }
    return absl::OkStatus();
  }

  absl::Status readBindings(const json::Value &value, const std::string &path,
                            std::vector<Binding> &bindings) {
    SYNTH_RETURN_IF_ERROR(readArray(value, path));
    for (size_t i = 0; i < value.items().size(); ++i) {
      const json::Value &info = value.items()[i];
      std::string itemPath = indexPath(path, i);
      SYNTH_RETURN_IF_ERROR(checkKeys(info, itemPath, {"name", "buffer"}, {}));
      Binding binding;
      SYNTH_RETURN_IF_ERROR(readString(
          *info.find("name"), childPath(itemPath, "name"), binding.name));
      SYNTH_RETURN_IF_ERROR(readNonNegative(
          *info.find("buffer"), childPath(itemPath, "buffer"), binding.buffer));
      bindings.push_back(std::move(binding));
    }
    return absl::OkStatus();
  }

  absl::Status readBuffer(const json::Value &info, const std::string &path,
                          BufferInfo &buffer) {
    // Which of offset/name are allowed depends on the storage kind.
    SYNTH_RETURN_IF_ERROR(checkKeys(info, path, {"shape", "dtype", "storage"},
                                    {"offset", "name"}));
    SYNTH_RETURN_IF_ERROR(
        readShape(*info.find("shape"), childPath(path, "shape"), buffer.shape));
    SYNTH_RETURN_IF_ERROR(
        readDType(*info.find("dtype"), childPath(path, "dtype"), buffer.dtype));
    const json::Value &storageValue = *info.find("storage");
    std::string storage;
    SYNTH_RETURN_IF_ERROR(
        readString(storageValue, childPath(path, "storage"), storage));
    if (storage == "input") {
      buffer.storage = Storage::Input;
    } else if (storage == "param") {
      buffer.storage = Storage::Param;
    } else if (storage == "output") {
      buffer.storage = Storage::Output;
    } else if (storage == "arena") {
      buffer.storage = Storage::Arena;
    } else if (storage == "derived") {
      buffer.storage = Storage::Derived;
    } else if (storage == "state") {
      buffer.storage = Storage::State;
    } else {
      return errors_.fail(storageValue, childPath(path, "storage"),
                          absl::StrCat("unknown storage ", json::quote(storage),
                                       " (expected input, param, output, "
                                       "arena, derived or state)"));
    }
    const json::Value *offset = info.find("offset");
    const json::Value *name = info.find("name");
    if (buffer.storage == Storage::Arena) {
      if (!offset) {
        return errors_.fail(info, path,
                            "missing key \"offset\" (an arena buffer needs "
                            "its byte offset)");
      }
      SYNTH_RETURN_IF_ERROR(
          readNonNegative(*offset, childPath(path, "offset"), buffer.offset));
    } else if (offset) {
      return errors_.fail(*offset, childPath(path, "offset"),
                          absl::StrCat("only arena buffers have an offset; "
                                       "this one is ",
                                       storage));
    }
    if (buffer.storage == Storage::Param || buffer.storage == Storage::State) {
      if (!name) {
        return errors_.fail(
            info, path,
            absl::StrCat(
                "missing key \"name\" (a ", storage, " buffer names its ",
                buffer.storage == Storage::Param ? "parameter)" : "state)"));
      }
      SYNTH_RETURN_IF_ERROR(
          readString(*name, childPath(path, "name"), buffer.param));
    } else if (name) {
      return errors_.fail(
          *name, childPath(path, "name"),
          absl::StrCat("only param and state buffers have a name (inputs and "
                       "outputs are named in the entry's inputs and outputs); "
                       "this one is ",
                       storage));
    }
    return absl::OkStatus();
  }

  absl::Status readCall(const json::Value &info, const std::string &path,
                        CallInfo &call) {
    SYNTH_RETURN_IF_ERROR(checkKeys(
        info, path, {"kernel", "buffers", "flops", "bytes"}, {"once"}));
    if (const json::Value *once = info.find("once")) {
      if (!once->isBool()) {
        return errors_.fail(
            *once, childPath(path, "once"),
            absl::StrCat("expected true or false, got ", describe(*once)));
      }
      call.once = once->asBool();
    }
    SYNTH_RETURN_IF_ERROR(readString(*info.find("kernel"),
                                     childPath(path, "kernel"), call.kernel));
    const json::Value &buffers = *info.find("buffers");
    std::string buffersPath = childPath(path, "buffers");
    SYNTH_RETURN_IF_ERROR(readArray(buffers, buffersPath));
    for (size_t i = 0; i < buffers.items().size(); ++i) {
      call.buffers.emplace_back();
      SYNTH_RETURN_IF_ERROR(readNonNegative(
          buffers.items()[i], indexPath(buffersPath, i), call.buffers.back()));
    }
    SYNTH_RETURN_IF_ERROR(readNonNegative(
        *info.find("flops"), childPath(path, "flops"), call.flops));
    return readNonNegative(*info.find("bytes"), childPath(path, "bytes"),
                           call.bytes);
  }

  absl::Status readEntries(const json::Value &value,
                           std::vector<EntryInfo> &entries) {
    if (!value.isObject()) {
      return errors_.fail(value, "entries",
                          absl::StrCat("expected an object of entry points, "
                                       "got ",
                                       describe(value)));
    }
    for (const auto &[name, info] : value.members()) {
      std::string path = childPath("entries", name);
      SYNTH_RETURN_IF_ERROR(checkKeys(
          info, path, {"inputs", "outputs", "buffers", "arena_bytes", "calls"},
          {"updates"}));
      EntryInfo entry;
      entry.name = name;
      SYNTH_RETURN_IF_ERROR(readBindings(
          *info.find("inputs"), childPath(path, "inputs"), entry.inputs));
      SYNTH_RETURN_IF_ERROR(readBindings(
          *info.find("outputs"), childPath(path, "outputs"), entry.outputs));
      const json::Value &buffers = *info.find("buffers");
      std::string buffersPath = childPath(path, "buffers");
      SYNTH_RETURN_IF_ERROR(readArray(buffers, buffersPath));
      for (size_t i = 0; i < buffers.items().size(); ++i) {
        entry.buffers.emplace_back();
        SYNTH_RETURN_IF_ERROR(readBuffer(buffers.items()[i],
                                         indexPath(buffersPath, i),
                                         entry.buffers.back()));
      }
      SYNTH_RETURN_IF_ERROR(readNonNegative(*info.find("arena_bytes"),
                                            childPath(path, "arena_bytes"),
                                            entry.arenaBytes));
      const json::Value &calls = *info.find("calls");
      std::string callsPath = childPath(path, "calls");
      SYNTH_RETURN_IF_ERROR(readArray(calls, callsPath));
      for (size_t i = 0; i < calls.items().size(); ++i) {
        entry.calls.emplace_back();
        SYNTH_RETURN_IF_ERROR(readCall(
            calls.items()[i], indexPath(callsPath, i), entry.calls.back()));
      }
      if (const json::Value *updates = info.find("updates")) {
        std::string updatesPath = childPath(path, "updates");
        SYNTH_RETURN_IF_ERROR(readArray(*updates, updatesPath));
        for (size_t i = 0; i < updates->items().size(); ++i) {
          int64_t index = 0;
          SYNTH_RETURN_IF_ERROR(readNonNegative(
              updates->items()[i], indexPath(updatesPath, i), index));
          entry.updates.push_back(index);
        }
      }
      entries.push_back(std::move(entry));
    }
    return absl::OkStatus();
  }

  const ErrorReporter &errors_;
};

//===----------------------------------------------------------------------===//
// Second pass: what the values mean together
//===----------------------------------------------------------------------===//

/// Elements above this are rejected, so byte sizes cannot overflow int64.
constexpr int64_t kMaxElements = int64_t(1) << 40;

bool isLowerHex(const std::string &text) {
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) {
      return false;
    }
  }
  return true;
}

class Validator {
public:
  Validator(const Manifest &manifest, const ErrorReporter &errors)
      : m_(manifest), errors_(errors) {}

  absl::Status run() {
    if (m_.format != kArtifactFormat) {
      return errors_.fail("format",
                          absl::StrCat("expected \"", kArtifactFormat,
                                       "\", got ", json::quote(m_.format)));
    }
    if (m_.version != kArtifactVersion) {
      return errors_.fail("version",
                          absl::StrCat("unsupported artifact version ",
                                       m_.version, " (this runtime reads ",
                                       kArtifactVersion, ")"));
    }
    if (!m_.model.isObject()) {
      return errors_.fail("model", "expected the model description (an "
                                   "object)");
    }
    SYNTH_RETURN_IF_ERROR(checkTarget());
    SYNTH_RETURN_IF_ERROR(checkFiles());
    SYNTH_RETURN_IF_ERROR(checkCuda());
    SYNTH_RETURN_IF_ERROR(checkParameters());
    if (m_.entries.empty()) {
      return errors_.fail("entries", "an artifact needs at least one entry "
                                     "point");
    }
    std::set<std::string> names;
    for (const EntryInfo &entry : m_.entries) {
      std::string path = childPath("entries", entry.name);
      if (!isIdentifier(entry.name)) {
        return errors_.fail(path, absl::StrCat("entry point name ",
                                               json::quote(entry.name),
                                               " is not an identifier"));
      }
      if (!names.insert(entry.name).second) {
        return errors_.fail(path, absl::StrCat("duplicate entry point ",
                                               json::quote(entry.name)));
      }
      SYNTH_RETURN_IF_ERROR(checkEntry(entry, path));
      SYNTH_RETURN_IF_ERROR(checkCudaCalls(entry, path));
    }
    return absl::OkStatus();
  }

private:
  absl::Status checkShape(const std::vector<int64_t> &shape,
                          const std::string &path) {
    int64_t elements = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] <= 0) {
        return errors_.fail(
            indexPath(path, i),
            absl::StrCat("expected a positive dimension, got ", shape[i]));
      }
      if (shape[i] > kMaxElements / elements) {
        return errors_.fail(path, absl::StrCat("shape ", formatShape(shape),
                                               " has more than 2^40 "
                                               "elements"));
      }
      elements *= shape[i];
    }
    return absl::OkStatus();
  }

  absl::Status checkTarget() {
    const TargetInfo &t = m_.target;
    if (t.kind != "cpu" && t.kind != "cuda") {
      return errors_.fail("target.kind",
                          absl::StrCat("unknown target kind ",
                                       json::quote(t.kind),
                                       " (expected cpu or cuda)"));
    }
    if (t.arch.empty()) {
      return errors_.fail("target.arch", "empty architecture");
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < t.requiredFeatures.size(); ++i) {
      const std::string &feature = t.requiredFeatures[i];
      std::string path = indexPath("target.required_features", i);
      if (feature.empty()) {
        return errors_.fail(path, "empty feature name");
      }
      if (!seen.insert(feature).second) {
        return errors_.fail(
            path, absl::StrCat("duplicate feature ", json::quote(feature)));
      }
    }
    if (t.kind == "cpu" && t.variants.empty()) {
      return errors_.fail("target.variants",
                          "a cpu artifact lists at least one Halide target");
    }
    for (size_t i = 0; i < t.variants.size(); ++i) {
      if (t.variants[i].empty()) {
        return errors_.fail(indexPath("target.variants", i),
                            "empty Halide target");
      }
    }
    return absl::OkStatus();
  }

  absl::Status checkFiles() {
    std::set<std::string> seen;
    for (const FileInfo &file : m_.files) {
      std::string path = childPath("files", file.name);
      // Names are plain file names: a manifest must not reach outside its
      // artifact directory (no "/", no "..").
      if (file.name.empty() || file.name == "." || file.name == ".." ||
          file.name.find('/') != std::string::npos ||
          file.name.find('\0') != std::string::npos) {
        return errors_.fail(path, absl::StrCat(json::quote(file.name),
                                               " is not a plain file name "
                                               "inside the artifact"));
      }
      if (file.name == "manifest.json") {
        return errors_.fail(path, "the manifest cannot list itself");
      }
      if (!seen.insert(file.name).second) {
        return errors_.fail(
            path, absl::StrCat("duplicate file ", json::quote(file.name)));
      }
      if (file.sha256.size() != 64 || !isLowerHex(file.sha256)) {
        return errors_.fail(childPath(path, "sha256"),
                            absl::StrCat("expected 64 lowercase hex digits, "
                                         "got ",
                                         json::quote(file.sha256)));
      }
      if (file.bytes < 0) {
        return errors_.fail(childPath(path, "bytes"),
                            absl::StrCat("negative size ", file.bytes));
      }
    }
    if (m_.target.kind == "cpu" && !seen.count("kernels.so")) {
      return errors_.fail("files", "missing \"kernels.so\" (the kernels of a "
                                   "cpu artifact)");
    }
    if (!m_.parameters.empty() && !seen.count("weights.safetensors")) {
      return errors_.fail("files",
                          absl::StrCat("missing \"weights.safetensors\" (the "
                                       "model has ",
                                       m_.parameters.size(), " parameters)"));
    }
    return absl::OkStatus();
  }

  /// "sm_" followed by digits and an optional "a" (sm_80, sm_90a).
  static bool isCudaArch(const std::string &arch) {
    if (arch.size() < 5 || arch.compare(0, 3, "sm_") != 0) {
      return false;
    }
    size_t end = arch.back() == 'a' ? arch.size() - 1 : arch.size();
    for (size_t i = 3; i < end; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(arch[i]))) {
        return false;
      }
    }
    return end > 4;
  }

  absl::Status checkCudaFile(const std::string &name, const std::string &path,
                             const char *what) {
    if (name.empty()) {
      return errors_.fail(path, absl::StrCat("empty ", what, " file name"));
    }
    if (!m_.findFile(name)) {
      return errors_.fail(path, absl::StrCat(what, " file ", json::quote(name),
                                             " is not listed in files"));
    }
    return absl::OkStatus();
  }

  absl::Status checkCuda() {
    if (!m_.cuda) {
      return absl::OkStatus();
    }
    const CudaInfo &cuda = *m_.cuda;
    if (m_.target.kind != "cuda") {
      return errors_.fail("cuda", absl::StrCat("only a cuda target has a "
                                               "\"cuda\" key; this one is ",
                                               json::quote(m_.target.kind)));
    }
    if (!isCudaArch(cuda.arch)) {
      return errors_.fail("cuda.arch",
                          absl::StrCat("expected an architecture such as "
                                       "sm_80 or sm_90a, got ",
                                       json::quote(cuda.arch)));
    }
    if (cuda.arch != m_.target.arch) {
      return errors_.fail("cuda.arch",
                          absl::StrCat(json::quote(cuda.arch),
                                       " differs from target.arch ",
                                       json::quote(m_.target.arch)));
    }
    if (cuda.precision != "f32" && cuda.precision != "bf16" &&
        cuda.precision != "f16") {
      return errors_.fail("cuda.precision",
                          absl::StrCat("unknown precision ",
                                       json::quote(cuda.precision),
                                       " (expected f32, bf16 or f16)"));
    }
    if (cuda.abi != kCudaAbi) {
      return errors_.fail("cuda.abi", absl::StrCat("unsupported kernel ABI ",
                                                   json::quote(cuda.abi),
                                                   " (this runtime "
                                                   "passes \"",
                                                   kCudaAbi, "\")"));
    }
    std::set<std::string> names;
    for (const CudaKernelInfo &kernel : cuda.kernels) {
      std::string path = childPath("cuda.kernels", kernel.name);
      if (!names.insert(kernel.name).second) {
        return errors_.fail(
            path, absl::StrCat("duplicate kernel ", json::quote(kernel.name)));
      }
      if (!isIdentifier(kernel.entry)) {
        return errors_.fail(childPath(path, "entry"),
                            absl::StrCat("entry ", json::quote(kernel.entry),
                                         " is not a C identifier"));
      }
      SYNTH_RETURN_IF_ERROR(
          checkCudaFile(kernel.ptx, childPath(path, "ptx"), "ptx"));
      if (!kernel.cubin.empty()) {
        SYNTH_RETURN_IF_ERROR(
            checkCudaFile(kernel.cubin, childPath(path, "cubin"), "cubin"));
      }
      // The driver's limits: grid x < 2^31, y and z < 2^16; block x and y
      // <= 1024, z <= 64, at most 1024 threads.
      static constexpr int64_t kGridMax[3] = {2147483647, 65535, 65535};
      static constexpr int64_t kBlockMax[3] = {1024, 1024, 64};
      for (int d = 0; d < 3; ++d) {
        std::string gridPath = indexPath(childPath(path, "grid"), d);
        if (kernel.grid[d] <= 0 || kernel.grid[d] > kGridMax[d]) {
          return errors_.fail(
              gridPath, absl::StrCat("grid dimension ", kernel.grid[d],
                                     " out of range [1, ", kGridMax[d], "]"));
        }
        std::string blockPath = indexPath(childPath(path, "block"), d);
        if (kernel.block[d] <= 0 || kernel.block[d] > kBlockMax[d]) {
          return errors_.fail(
              blockPath, absl::StrCat("block dimension ", kernel.block[d],
                                      " out of range [1, ", kBlockMax[d], "]"));
        }
      }
      int64_t threads = kernel.block[0] * kernel.block[1] * kernel.block[2];
      if (threads > kCudaMaxThreadsPerBlock) {
        return errors_.fail(childPath(path, "block"),
                            absl::StrCat(threads,
                                         " threads per block; at most ",
                                         kCudaMaxThreadsPerBlock));
      }
      if (kernel.sharedBytes < 0 || kernel.sharedBytes > kCudaMaxSharedBytes) {
        return errors_.fail(childPath(path, "shared_bytes"),
                            absl::StrCat(kernel.sharedBytes,
                                         " bytes of shared memory; static "
                                         "shared memory is at most ",
                                         kCudaMaxSharedBytes));
      }
    }
    for (size_t i = 0; i < cuda.skippedEntries.size(); ++i) {
      const std::string &name = cuda.skippedEntries[i];
      if (m_.findEntry(name)) {
        return errors_.fail(indexPath("cuda.skipped_entries", i),
                            absl::StrCat("entry ", json::quote(name),
                                         " is both skipped and in entries"));
      }
    }
    return absl::OkStatus();
  }

  /// Every call of a cuda plan names a kernel of cuda.kernels.
  absl::Status checkCudaCalls(const EntryInfo &entry, const std::string &path) {
    if (!m_.cuda) {
      return absl::OkStatus();
    }
    for (size_t c = 0; c < entry.calls.size(); ++c) {
      const std::string &kernel = entry.calls[c].kernel;
      if (!m_.cuda->findKernel(kernel)) {
        return errors_.fail(
            childPath(indexPath(childPath(path, "calls"), c), "kernel"),
            absl::StrCat("kernel ", json::quote(kernel),
                         " has no entry in cuda.kernels"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status checkParameters() {
    std::set<std::string> seen;
    for (size_t i = 0; i < m_.parameters.size(); ++i) {
      const ParameterInfo &param = m_.parameters[i];
      std::string path = indexPath("parameters", i);
      if (param.name.empty()) {
        return errors_.fail(childPath(path, "name"), "empty parameter name");
      }
      if (!seen.insert(param.name).second) {
        return errors_.fail(
            childPath(path, "name"),
            absl::StrCat("duplicate parameter ", json::quote(param.name)));
      }
      SYNTH_RETURN_IF_ERROR(checkShape(param.shape, childPath(path, "shape")));
      if (param.dtype != DType::F32) {
        return errors_.fail(
            childPath(path, "dtype"),
            absl::StrCat("parameters are F32, got ", dtypeName(param.dtype)));
      }
    }
    return absl::OkStatus();
  }

  /// inputs or outputs: unique names, indices in range, the right storage,
  /// and every buffer of that storage bound exactly once.
  absl::Status checkBindings(const EntryInfo &entry, const std::string &path,
                             const std::vector<Binding> &bindings,
                             Storage storage, const char *listName) {
    std::string listPath = childPath(path, listName);
    std::set<std::string> names;
    std::map<int64_t, size_t> boundBy;
    for (size_t i = 0; i < bindings.size(); ++i) {
      const Binding &binding = bindings[i];
      std::string itemPath = indexPath(listPath, i);
      if (binding.name.empty()) {
        return errors_.fail(childPath(itemPath, "name"), "empty name");
      }
      if (!names.insert(binding.name).second) {
        return errors_.fail(
            childPath(itemPath, "name"),
            absl::StrCat("duplicate name ", json::quote(binding.name)));
      }
      std::string bufferPath = childPath(itemPath, "buffer");
      SYNTH_RETURN_IF_ERROR(checkIndex(entry, binding.buffer, bufferPath));
      const BufferInfo &buffer = entry.buffers[binding.buffer];
      if (buffer.storage != storage) {
        return errors_.fail(
            bufferPath, absl::StrCat("buffer ", binding.buffer, " has storage ",
                                     storageName(buffer.storage), ", not ",
                                     storageName(storage)));
      }
      auto [it, inserted] = boundBy.emplace(binding.buffer, i);
      if (!inserted) {
        return errors_.fail(bufferPath,
                            absl::StrCat("buffer ", binding.buffer,
                                         " is already bound by ", listName, "[",
                                         it->second, "]"));
      }
    }
    for (size_t i = 0; i < entry.buffers.size(); ++i) {
      if (entry.buffers[i].storage == storage && !boundBy.count(i)) {
        return errors_.fail(
            childPath(indexPath(childPath(path, "buffers"), i), "storage"),
            absl::StrCat("an ", storageName(storage),
                         " buffer must be named "
                         "in ",
                         listName, ", and buffer ", i, " is not"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status checkIndex(const EntryInfo &entry, int64_t index,
                          const std::string &path) {
    if (index < 0 || index >= static_cast<int64_t>(entry.buffers.size())) {
      return errors_.fail(
          path, absl::StrCat("buffer index ", index, " out of range (plan has ",
                             entry.buffers.size(), " buffers)"));
    }
    return absl::OkStatus();
  }

  absl::Status checkEntry(const EntryInfo &entry, const std::string &path) {
    if (entry.arenaBytes < 0) {
      return errors_.fail(childPath(path, "arena_bytes"),
                          absl::StrCat("negative size ", entry.arenaBytes));
    }
    std::string buffersPath = childPath(path, "buffers");
    for (size_t i = 0; i < entry.buffers.size(); ++i) {
      const BufferInfo &buffer = entry.buffers[i];
      std::string bufferPath = indexPath(buffersPath, i);
      SYNTH_RETURN_IF_ERROR(
          checkShape(buffer.shape, childPath(bufferPath, "shape")));
      if (buffer.dtype != DType::F32 && buffer.dtype != DType::I32 &&
          buffer.dtype != DType::U8) {
        return errors_.fail(childPath(bufferPath, "dtype"),
                            absl::StrCat("unsupported dtype ",
                                         dtypeName(buffer.dtype),
                                         " (an artifact uses F32, I32 or U8)"));
      }
      if (buffer.storage == Storage::Arena) {
        std::string offsetPath = childPath(bufferPath, "offset");
        if (buffer.offset < 0 || buffer.offset % kArenaAlignment != 0) {
          return errors_.fail(offsetPath,
                              absl::StrCat("arena offset ", buffer.offset,
                                           " is not a multiple of ",
                                           kArenaAlignment));
        }
        if (buffer.offset > entry.arenaBytes ||
            buffer.byteSize() > entry.arenaBytes - buffer.offset) {
          return errors_.fail(offsetPath,
                              absl::StrCat("bytes [", buffer.offset, ", ",
                                           buffer.offset + buffer.byteSize(),
                                           ") of ", dtypeName(buffer.dtype),
                                           " ", formatShape(buffer.shape),
                                           " lie outside the arena of ",
                                           entry.arenaBytes, " bytes"));
        }
      } else if (buffer.offset != 0) {
        return errors_.fail(bufferPath, "only arena buffers have an offset");
      }
      if (buffer.storage == Storage::Param) {
        std::string namePath = childPath(bufferPath, "name");
        const ParameterInfo *param = m_.findParameter(buffer.param);
        if (!param) {
          return errors_.fail(namePath, absl::StrCat("unknown parameter ",
                                                     json::quote(buffer.param),
                                                     " (not in parameters)"));
        }
        if (param->shape != buffer.shape || param->dtype != buffer.dtype) {
          return errors_.fail(
              bufferPath,
              absl::StrCat("buffer is ", dtypeName(buffer.dtype), " ",
                           formatShape(buffer.shape), " but parameter ",
                           json::quote(param->name), " is ",
                           dtypeName(param->dtype), " ",
                           formatShape(param->shape)));
        }
      } else if (buffer.storage == Storage::State) {
        if (buffer.param.empty()) {
          return errors_.fail(childPath(bufferPath, "name"),
                              "empty state name");
        }
        if (buffer.dtype != DType::F32) {
          return errors_.fail(childPath(bufferPath, "dtype"),
                              absl::StrCat("state buffers are F32, got ",
                                           dtypeName(buffer.dtype)));
        }
        for (size_t j = 0; j < i; ++j) {
          if (entry.buffers[j].storage == Storage::State &&
              entry.buffers[j].param == buffer.param) {
            return errors_.fail(childPath(bufferPath, "name"),
                                absl::StrCat("state ",
                                             json::quote(buffer.param),
                                             " is already buffer ", j));
          }
        }
      } else if (!buffer.param.empty()) {
        return errors_.fail(bufferPath,
                            "only param and state buffers have a name");
      }
    }
    // In-place updates: param or state buffers, each listed once.
    std::string updatesPath = childPath(path, "updates");
    std::set<int64_t> updated;
    for (size_t u = 0; u < entry.updates.size(); ++u) {
      int64_t index = entry.updates[u];
      std::string itemPath = indexPath(updatesPath, u);
      SYNTH_RETURN_IF_ERROR(checkIndex(entry, index, itemPath));
      Storage storage = entry.buffers[index].storage;
      if (storage != Storage::Param && storage != Storage::State) {
        return errors_.fail(itemPath,
                            absl::StrCat("buffer ", index, " is ",
                                         storageName(storage),
                                         "; only param and state buffers are "
                                         "updated in place"));
      }
      if (!updated.insert(index).second) {
        return errors_.fail(itemPath,
                            absl::StrCat("buffer ", index, " is listed twice"));
      }
    }
    SYNTH_RETURN_IF_ERROR(
        checkBindings(entry, path, entry.inputs, Storage::Input, "inputs"));
    SYNTH_RETURN_IF_ERROR(
        checkBindings(entry, path, entry.outputs, Storage::Output, "outputs"));

    std::vector<bool> passed(entry.buffers.size(), false);
    std::string callsPath = childPath(path, "calls");
    for (size_t c = 0; c < entry.calls.size(); ++c) {
      const CallInfo &call = entry.calls[c];
      std::string callPath = indexPath(callsPath, c);
      if (!isIdentifier(call.kernel)) {
        return errors_.fail(childPath(callPath, "kernel"),
                            absl::StrCat("kernel name ",
                                         json::quote(call.kernel),
                                         " is not a C identifier"));
      }
      std::string argsPath = childPath(callPath, "buffers");
      if (call.buffers.empty()) {
        return errors_.fail(argsPath, "a kernel takes at least one buffer");
      }
      if (call.buffers.size() > static_cast<size_t>(kMaxKernelArguments)) {
        return errors_.fail(argsPath,
                            absl::StrCat(call.buffers.size(),
                                         " arguments; this runtime passes at "
                                         "most ",
                                         kMaxKernelArguments));
      }
      for (size_t a = 0; a < call.buffers.size(); ++a) {
        SYNTH_RETURN_IF_ERROR(
            checkIndex(entry, call.buffers[a], indexPath(argsPath, a)));
        passed[call.buffers[a]] = true;
      }
      if (call.flops < 0 || call.bytes < 0) {
        return errors_.fail(callPath, "flops and bytes must be non-negative");
      }
      // A once-call sees only parameters and derived values, so running it
      // once per parameter binding is exact.
      for (size_t a = 0; call.once && a < call.buffers.size(); ++a) {
        Storage storage = entry.buffers[call.buffers[a]].storage;
        if (storage != Storage::Param && storage != Storage::Derived) {
          return errors_.fail(
              indexPath(argsPath, a),
              absl::StrCat("a once call may only use param and derived "
                           "buffers; buffer ",
                           call.buffers[a], " is ", storageName(storage)));
        }
      }
    }
    // Derived buffers are written by once calls and nothing else.
    for (size_t i = 0; i < entry.buffers.size(); ++i) {
      if (entry.buffers[i].storage != Storage::Derived) {
        continue;
      }
      bool byOnce = false;
      for (const CallInfo &call : entry.calls) {
        if (call.once &&
            std::find(call.buffers.begin(), call.buffers.end(),
                      static_cast<int64_t>(i)) != call.buffers.end()) {
          byOnce = true;
        }
      }
      if (!byOnce) {
        return errors_.fail(indexPath(buffersPath, i),
                            "a derived buffer must be computed by a once call");
      }
    }
    // An output no kernel touches would come back as whatever the caller's
    // memory held: reject the plan instead.
    for (size_t o = 0; o < entry.outputs.size(); ++o) {
      if (!passed[entry.outputs[o].buffer]) {
        return errors_.fail(indexPath(childPath(path, "outputs"), o),
                            absl::StrCat("output ",
                                         json::quote(entry.outputs[o].name),
                                         " (buffer ", entry.outputs[o].buffer,
                                         ") is never passed to a kernel"));
      }
    }
    return absl::OkStatus();
  }

  const Manifest &m_;
  const ErrorReporter &errors_;
};

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

json::Value shapeValue(const std::vector<int64_t> &shape) {
  json::Value out = json::Value::array();
  for (int64_t d : shape) {
    out.push(json::Value::integer(d));
  }
  return out;
}

json::Value bindingsValue(const std::vector<Binding> &bindings) {
  json::Value out = json::Value::array();
  for (const Binding &binding : bindings) {
    json::Value item = json::Value::object();
    item.set("name", json::Value::string(binding.name));
    item.set("buffer", json::Value::integer(binding.buffer));
    out.push(std::move(item));
  }
  return out;
}

bool isScalar(const json::Value &value) {
  return !value.isArray() && !value.isObject();
}

/// True for values nested at most three deep (an array of objects of
/// arrays): these print on one line when short enough, as in
/// {"shape": [2, 16], "dtype": "I32", "storage": "input"}.
bool isFlat(const json::Value &value, int depth = 0) {
  if (isScalar(value)) {
    return true;
  }
  if (depth > 2) {
    return false;
  }
  if (value.isArray()) {
    for (const json::Value &item : value.items()) {
      if (!isFlat(item, depth + 1)) {
        return false;
      }
    }
    return true;
  }
  for (const auto &[key, member] : value.members()) {
    if (!isFlat(member, depth + 1)) {
      return false;
    }
  }
  return true;
}

void writeInline(const json::Value &value, std::string &out) {
  if (value.isArray()) {
    out += '[';
    for (size_t i = 0; i < value.items().size(); ++i) {
      out += i ? ", " : "";
      writeInline(value.items()[i], out);
    }
    out += ']';
  } else if (value.isObject()) {
    out += '{';
    bool first = true;
    for (const auto &[key, member] : value.members()) {
      out += first ? "" : ", ";
      first = false;
      out += json::quote(key);
      out += ": ";
      writeInline(member, out);
    }
    out += '}';
  } else {
    out += json::serialize(value);
  }
}

/// Indented JSON, with flat values kept on one line when they fit.
void writePretty(const json::Value &value, int indent, std::string &out) {
  std::string flat;
  if (isFlat(value)) {
    writeInline(value, flat);
    if (flat.size() + indent * 2 <= 110) {
      out += flat;
      return;
    }
  }
  auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<size_t>(level) * 2, ' ');
  };
  if (value.isArray()) {
    if (value.items().empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < value.items().size(); ++i) {
      out += i ? "," : "";
      newline(indent + 1);
      writePretty(value.items()[i], indent + 1, out);
    }
    newline(indent);
    out += ']';
  } else if (value.isObject()) {
    if (value.members().empty()) {
      out += "{}";
      return;
    }
    out += '{';
    bool first = true;
    for (const auto &[key, member] : value.members()) {
      out += first ? "" : ",";
      first = false;
      newline(indent + 1);
      out += json::quote(key);
      out += ": ";
      writePretty(member, indent + 1, out);
    }
    newline(indent);
    out += '}';
  } else {
    out += flat;
  }
}

} // namespace

absl::StatusOr<Manifest> parseManifest(const std::string &text,
                                       const std::string &source) {
  absl::StatusOr<json::Value> root = json::parse(text, source);
  if (!root.ok()) {
    return root.status();
  }
  PositionTable positions;
  recordPositions(*root, "", positions);
  ErrorReporter errors(source, &positions);
  Manifest manifest;
  SYNTH_RETURN_IF_ERROR(Reader(errors).read(*root, manifest));
  SYNTH_RETURN_IF_ERROR(Validator(manifest, errors).run());
  return manifest;
}

absl::StatusOr<Manifest> readManifest(const std::string &path) {
  absl::StatusOr<std::string> text = readFileBytes(path);
  if (!text.ok()) {
    return text.status();
  }
  return parseManifest(*text, path);
}

absl::Status validateManifest(const Manifest &manifest,
                              const std::string &source) {
  ErrorReporter errors(source, nullptr);
  return Validator(manifest, errors).run();
}

std::string serializeManifest(const Manifest &manifest) {
  json::Value root = json::Value::object();
  root.set("format", json::Value::string(manifest.format));
  root.set("version", json::Value::integer(manifest.version));
  root.set("model", manifest.model);
  if (manifest.schedule.isObject()) {
    root.set("schedule", manifest.schedule);
  }

  json::Value target = json::Value::object();
  target.set("kind", json::Value::string(manifest.target.kind));
  target.set("arch", json::Value::string(manifest.target.arch));
  json::Value features = json::Value::array();
  for (const std::string &feature : manifest.target.requiredFeatures) {
    features.push(json::Value::string(feature));
  }
  target.set("required_features", std::move(features));
  json::Value variants = json::Value::array();
  for (const std::string &variant : manifest.target.variants) {
    variants.push(json::Value::string(variant));
  }
  target.set("variants", std::move(variants));
  root.set("target", std::move(target));

  json::Value files = json::Value::object();
  for (const FileInfo &file : manifest.files) {
    json::Value info = json::Value::object();
    info.set("sha256", json::Value::string(file.sha256));
    info.set("bytes", json::Value::integer(file.bytes));
    files.set(file.name, std::move(info));
  }
  root.set("files", std::move(files));

  json::Value parameters = json::Value::array();
  for (const ParameterInfo &param : manifest.parameters) {
    json::Value info = json::Value::object();
    info.set("name", json::Value::string(param.name));
    info.set("shape", shapeValue(param.shape));
    info.set("dtype", json::Value::string(dtypeName(param.dtype)));
    info.set("trainable", json::Value::boolean(param.trainable));
    parameters.push(std::move(info));
  }
  root.set("parameters", std::move(parameters));

  json::Value entries = json::Value::object();
  for (const EntryInfo &entry : manifest.entries) {
    json::Value info = json::Value::object();
    info.set("inputs", bindingsValue(entry.inputs));
    info.set("outputs", bindingsValue(entry.outputs));
    json::Value buffers = json::Value::array();
    for (const BufferInfo &buffer : entry.buffers) {
      json::Value item = json::Value::object();
      item.set("shape", shapeValue(buffer.shape));
      item.set("dtype", json::Value::string(dtypeName(buffer.dtype)));
      item.set("storage", json::Value::string(storageName(buffer.storage)));
      if (buffer.storage == Storage::Arena) {
        item.set("offset", json::Value::integer(buffer.offset));
      }
      if (buffer.storage == Storage::Param ||
          buffer.storage == Storage::State) {
        item.set("name", json::Value::string(buffer.param));
      }
      buffers.push(std::move(item));
    }
    info.set("buffers", std::move(buffers));
    info.set("arena_bytes", json::Value::integer(entry.arenaBytes));
    if (!entry.updates.empty()) {
      json::Value updates = json::Value::array();
      for (int64_t index : entry.updates) {
        updates.push(json::Value::integer(index));
      }
      info.set("updates", std::move(updates));
    }
    json::Value calls = json::Value::array();
    for (const CallInfo &call : entry.calls) {
      json::Value item = json::Value::object();
      item.set("kernel", json::Value::string(call.kernel));
      item.set("buffers", shapeValue(call.buffers));
      item.set("flops", json::Value::integer(call.flops));
      if (call.once) {
        item.set("once", json::Value::boolean(true));
      }
      item.set("bytes", json::Value::integer(call.bytes));
      calls.push(std::move(item));
    }
    info.set("calls", std::move(calls));
    entries.set(entry.name, std::move(info));
  }
  root.set("entries", std::move(entries));

  if (manifest.cuda) {
    const CudaInfo &info = *manifest.cuda;
    json::Value cuda = json::Value::object();
    cuda.set("arch", json::Value::string(info.arch));
    cuda.set("abi", json::Value::string(info.abi));
    cuda.set("precision", json::Value::string(info.precision));
    json::Value kernels = json::Value::object();
    for (const CudaKernelInfo &kernel : info.kernels) {
      json::Value item = json::Value::object();
      item.set("entry", json::Value::string(kernel.entry));
      item.set("ptx", json::Value::string(kernel.ptx));
      if (!kernel.cubin.empty()) {
        item.set("cubin", json::Value::string(kernel.cubin));
      }
      item.set("grid", shapeValue({kernel.grid.begin(), kernel.grid.end()}));
      item.set("block", shapeValue({kernel.block.begin(), kernel.block.end()}));
      item.set("shared_bytes", json::Value::integer(kernel.sharedBytes));
      if (!kernel.anchor.empty()) {
        item.set("anchor", json::Value::string(kernel.anchor));
      }
      kernels.set(kernel.name, std::move(item));
    }
    cuda.set("kernels", std::move(kernels));
    json::Value skipped = json::Value::array();
    for (const std::string &name : info.skippedEntries) {
      skipped.push(json::Value::string(name));
    }
    cuda.set("skipped_entries", std::move(skipped));
    root.set("cuda", std::move(cuda));
  }

  std::string out;
  writePretty(root, 0, out);
  out += '\n';
  return out;
}

} // namespace synth::rt
