//===- ModelConfig.cpp - parse and validate model descriptions ------------===//
//
// A small schema checker over runtime/Json: each field is read through a
// Reader that knows its JSON path and source position, so every error says
// where it is. Unknown keys are errors (a typo must not be silently ignored).
//
//===----------------------------------------------------------------------===//

#include "frontend/ModelConfig.h"

#include "runtime/FileUtil.h"
#include "runtime/Json.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include <optional>
#include <set>

namespace synth {

const char *taskName(Task task) {
  switch (task) {
  case Task::LM:
    return "lm";
  case Task::Encoder:
    return "encoder";
  case Task::Seq2Seq:
    return "seq2seq";
  }
  return "?";
}

const char *attentionKindName(AttentionKind kind) {
  switch (kind) {
  case AttentionKind::Dot:
    return "dot";
  case AttentionKind::Dense:
    return "dense";
  case AttentionKind::Random:
    return "random";
  case AttentionKind::FactorizedRandom:
    return "factorized_random";
  case AttentionKind::FactorizedDense:
    return "factorized_dense";
  case AttentionKind::Mixture:
    return "mixture";
  }
  return "?";
}

std::string AttentionSpec::describe() const {
  if (kind == AttentionKind::Mixture) {
    std::vector<std::string> names;
    for (const AttentionSpec &part : parts) {
      names.push_back(part.describe());
    }
    return absl::StrCat("mixture(", absl::StrJoin(names, "+"), ")");
  }
  if (kind == AttentionKind::Random && !trainable) {
    return "random(fixed)";
  }
  return attentionKindName(kind);
}

namespace {

using json::Value;

/// A JSON value with its path ("attention.parts[1].rank"), for errors.
class Field {
public:
  Field(const Value &value, std::string path, const std::string &source)
      : value_(value), path_(std::move(path)), source_(source) {}

  const Value &value() const { return value_; }
  const std::string &path() const { return path_; }

  absl::Status error(const std::string &what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ":", value_.line(), ":", value_.column(), ": ",
                     path_.empty() ? "(top level)" : path_, ": ", what));
  }

  /// Describes the value for "got ..." in errors.
  std::string got() const {
    switch (value_.kind()) {
    case Value::Kind::Number:
      return value_.isInteger() ? std::to_string(value_.asInt())
                                : absl::StrCat(value_.asDouble());
    case Value::Kind::String:
      return json::quote(value_.asString());
    case Value::Kind::Bool:
      return value_.asBool() ? "true" : "false";
    default:
      return Value::kindName(value_.kind());
    }
  }

  Field member(const Value &child, const std::string &key) const {
    return Field(child, path_.empty() ? key : absl::StrCat(path_, ".", key),
                 source_);
  }
  Field item(const Value &child, size_t index) const {
    return Field(child, absl::StrCat(path_, "[", index, "]"), source_);
  }

private:
  const Value &value_;
  std::string path_;
  const std::string &source_;
};

/// Reads the members of one JSON object, tracking which keys were consumed.
class ObjectReader {
public:
  /// Fails unless `field` is an object.
  static absl::StatusOr<ObjectReader> open(const Field &field) {
    if (!field.value().isObject()) {
      return field.error(absl::StrCat("expected an object, got ", field.got()));
    }
    return ObjectReader(field);
  }

  /// The member `key`, or nullptr when absent.
  const Value *find(const std::string &key) {
    known_.insert(key);
    return field_.value().find(key);
  }
  Field member(const std::string &key) {
    return field_.member(*field_.value().find(key), key);
  }
  absl::Status missing(const std::string &key, const std::string &what) const {
    return field_.error(absl::StrCat("missing required key ", json::quote(key),
                                     " (", what, ")"));
  }

  absl::StatusOr<int64_t> positiveInt(const std::string &key,
                                      const std::string &what,
                                      std::optional<int64_t> fallback = {}) {
    const Value *value = find(key);
    if (!value) {
      if (fallback) {
        return *fallback;
      }
      return missing(key, what);
    }
    Field f = member(key);
    if (!value->isInteger() || value->asInt() <= 0) {
      return f.error(absl::StrCat("expected a positive integer (", what,
                                  "), got ", f.got()));
    }
    return value->asInt();
  }

  absl::StatusOr<bool> boolean(const std::string &key, bool fallback) {
    const Value *value = find(key);
    if (!value) {
      return fallback;
    }
    Field f = member(key);
    if (!value->isBool()) {
      return f.error(absl::StrCat("expected true or false, got ", f.got()));
    }
    return value->asBool();
  }

  /// A string member that must be one of `choices`; returns its index.
  absl::StatusOr<size_t> choice(const std::string &key,
                                const std::vector<std::string> &choices,
                                std::optional<size_t> fallback = {}) {
    const Value *value = find(key);
    std::string expected = absl::StrCat(
        "one of ", absl::StrJoin(choices, ", ",
                                 [](std::string *out, const std::string &c) {
                                   out->append(json::quote(c));
                                 }));
    if (!value) {
      if (fallback) {
        return *fallback;
      }
      return missing(key, expected);
    }
    Field f = member(key);
    if (value->isString()) {
      for (size_t i = 0; i < choices.size(); ++i) {
        if (choices[i] == value->asString()) {
          return i;
        }
      }
    }
    return f.error(absl::StrCat("expected ", expected, ", got ", f.got()));
  }

  /// Fails on the first member that no read asked for.
  absl::Status rejectUnknown() const {
    for (const auto &[key, value] : field_.value().members()) {
      if (!known_.count(key)) {
        std::vector<std::string> names(known_.begin(), known_.end());
        return field_.member(value, key)
            .error(absl::StrCat("unknown key (expected one of: ",
                                absl::StrJoin(names, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  const Field &field() const { return field_; }

private:
  explicit ObjectReader(const Field &field) : field_(field) {}
  Field field_;
  std::set<std::string> known_;
};

#define SYNTH_ASSIGN_OR_RETURN(lhs, expr)                                      \
  auto SYNTH_CONCAT(status_or_, __LINE__) = (expr);                            \
  if (!SYNTH_CONCAT(status_or_, __LINE__).ok()) {                              \
    return SYNTH_CONCAT(status_or_, __LINE__).status();                        \
  }                                                                            \
  lhs = std::move(*SYNTH_CONCAT(status_or_, __LINE__))
#define SYNTH_CONCAT_INNER(a, b) a##b
#define SYNTH_CONCAT(a, b) SYNTH_CONCAT_INNER(a, b)
#define SYNTH_RETURN_IF_ERROR(expr)                                            \
  do {                                                                         \
    absl::Status status_ = (expr);                                             \
    if (!status_.ok()) {                                                       \
      return status_;                                                          \
    }                                                                          \
  } while (false)

const std::vector<std::string> kAttentionKinds = {
    "dot",    "dense", "random", "factorized_random", "factorized_dense",
    "mixture"};

/// Parses one attention spec; `inMixture` forbids nested mixtures.
absl::StatusOr<AttentionSpec>
parseAttention(const Field &field, const ModelConfig &config, bool inMixture) {
  SYNTH_ASSIGN_OR_RETURN(ObjectReader reader, ObjectReader::open(field));
  AttentionSpec spec;
  SYNTH_ASSIGN_OR_RETURN(size_t kind, reader.choice("kind", kAttentionKinds));
  spec.kind = static_cast<AttentionKind>(kind);
  switch (spec.kind) {
  case AttentionKind::Dot:
    break;
  case AttentionKind::Dense: {
    SYNTH_ASSIGN_OR_RETURN(
        spec.hidden,
        reader.positiveInt("hidden", "hidden width k of F", config.headDim()));
    break;
  }
  case AttentionKind::Random: {
    SYNTH_ASSIGN_OR_RETURN(spec.trainable, reader.boolean("trainable", true));
    break;
  }
  case AttentionKind::FactorizedRandom: {
    SYNTH_ASSIGN_OR_RETURN(spec.rank,
                           reader.positiveInt("rank", "rank r of R1 R2^T", 8));
    break;
  }
  case AttentionKind::FactorizedDense: {
    SYNTH_ASSIGN_OR_RETURN(
        spec.hidden,
        reader.positiveInt("hidden", "hidden width k", config.headDim()));
    SYNTH_ASSIGN_OR_RETURN(spec.a, reader.positiveInt("a", "a, with a*b = L"));
    SYNTH_ASSIGN_OR_RETURN(spec.b, reader.positiveInt("b", "b, with a*b = L"));
    if (spec.a * spec.b != config.maxLen) {
      return reader.member("b").error(
          absl::StrCat("a * b must equal max_len L = ", config.maxLen, ", got ",
                       spec.a, " * ", spec.b, " = ", spec.a * spec.b));
    }
    break;
  }
  case AttentionKind::Mixture: {
    if (inMixture) {
      return reader.member("kind").error(
          "a mixture cannot contain another mixture");
    }
    const Value *parts = reader.find("parts");
    if (!parts) {
      return reader.missing("parts", "the mixed attention kinds");
    }
    Field partsField = reader.member("parts");
    if (!parts->isArray()) {
      return partsField.error(absl::StrCat(
          "expected an array of attention specs, got ", partsField.got()));
    }
    if (parts->items().size() < 2) {
      return partsField.error(absl::StrCat(
          "a mixture needs at least two parts, got ", parts->items().size()));
    }
    std::set<AttentionKind> seen;
    for (size_t i = 0; i < parts->items().size(); ++i) {
      Field partField = partsField.item(parts->items()[i], i);
      SYNTH_ASSIGN_OR_RETURN(AttentionSpec part,
                             parseAttention(partField, config, true));
      if (!seen.insert(part.kind).second) {
        return partField.error(absl::StrCat(
            "attention kind ", json::quote(attentionKindName(part.kind)),
            " appears twice in the mixture (its parameters "
            "would have the same names)"));
      }
      spec.parts.push_back(std::move(part));
    }
    break;
  }
  }
  SYNTH_RETURN_IF_ERROR(reader.rejectUnknown());
  return spec;
}

/// Applies "attention_overrides": [{"layers": [..], "stack": .., "attention":
/// {..}}] to the per-layer attention lists.
absl::Status applyOverrides(const Field &field, ModelConfig &config) {
  if (!field.value().isArray()) {
    return field.error(
        absl::StrCat("expected an array of overrides, got ", field.got()));
  }
  for (size_t i = 0; i < field.value().items().size(); ++i) {
    Field item = field.item(field.value().items()[i], i);
    SYNTH_ASSIGN_OR_RETURN(ObjectReader reader, ObjectReader::open(item));
    Stack stack = config.task == Task::LM ? Stack::Decoder : Stack::Encoder;
    if (config.task == Task::Seq2Seq) {
      SYNTH_ASSIGN_OR_RETURN(size_t which,
                             reader.choice("stack", {"encoder", "decoder"}));
      stack = which == 0 ? Stack::Encoder : Stack::Decoder;
    } else if (reader.find("stack")) {
      return reader.member("stack").error(
          absl::StrCat("\"stack\" is only for seq2seq models (this model has "
                       "one stack of layers)"));
    }
    std::vector<AttentionSpec> &layers = stack == Stack::Encoder
                                             ? config.encoderAttention
                                             : config.decoderAttention;
    const Value *attention = reader.find("attention");
    if (!attention) {
      return reader.missing("attention", "the attention spec to use");
    }
    SYNTH_ASSIGN_OR_RETURN(
        AttentionSpec spec,
        parseAttention(reader.member("attention"), config, false));
    const Value *indices = reader.find("layers");
    if (!indices) {
      return reader.missing("layers", "the layer indices to override");
    }
    Field indicesField = reader.member("layers");
    if (!indices->isArray() || indices->items().empty()) {
      return indicesField.error(
          absl::StrCat("expected a non-empty array of layer indices, got ",
                       indicesField.got()));
    }
    for (size_t j = 0; j < indices->items().size(); ++j) {
      Field index = indicesField.item(indices->items()[j], j);
      const Value &v = index.value();
      if (!v.isInteger() || v.asInt() < 0 ||
          v.asInt() >= static_cast<int64_t>(layers.size())) {
        return index.error(absl::StrCat("expected a layer index in [0, ",
                                        layers.size(), "), got ", index.got()));
      }
      layers[v.asInt()] = spec;
    }
    SYNTH_RETURN_IF_ERROR(reader.rejectUnknown());
  }
  return absl::OkStatus();
}

} // namespace

absl::StatusOr<ModelConfig> parseModelConfig(const std::string &text,
                                             const std::string &source) {
  SYNTH_ASSIGN_OR_RETURN(Value root, json::parse(text, source));
  Field top(root, "", source);
  SYNTH_ASSIGN_OR_RETURN(ObjectReader reader, ObjectReader::open(top));
  ModelConfig config;

  if (const Value *name = reader.find("name")) {
    if (!name->isString()) {
      Field f = reader.member("name");
      return f.error(absl::StrCat("expected a string, got ", f.got()));
    }
    config.name = name->asString();
  }
  SYNTH_ASSIGN_OR_RETURN(size_t task,
                         reader.choice("task", {"lm", "encoder", "seq2seq"}));
  config.task = static_cast<Task>(task);
  SYNTH_ASSIGN_OR_RETURN(config.dModel,
                         reader.positiveInt("d_model", "model width"));
  SYNTH_ASSIGN_OR_RETURN(config.heads,
                         reader.positiveInt("heads", "attention heads"));
  if (config.dModel % config.heads != 0) {
    return reader.member("heads").error(
        absl::StrCat("d_model ", config.dModel, " is not divisible by heads ",
                     config.heads));
  }
  SYNTH_ASSIGN_OR_RETURN(config.ffn,
                         reader.positiveInt("ffn", "feed-forward width"));
  SYNTH_ASSIGN_OR_RETURN(config.maxLen,
                         reader.positiveInt("max_len", "longest sequence L"));

  // Layers: one stack for lm and encoder, two for seq2seq.
  int64_t encoderLayers = 0, decoderLayers = 0;
  if (config.task == Task::Seq2Seq) {
    if (reader.find("layers")) {
      return reader.member("layers").error(
          "seq2seq models take \"encoder_layers\" and \"decoder_layers\" "
          "instead of \"layers\"");
    }
    SYNTH_ASSIGN_OR_RETURN(
        encoderLayers, reader.positiveInt("encoder_layers", "encoder depth"));
    SYNTH_ASSIGN_OR_RETURN(
        decoderLayers, reader.positiveInt("decoder_layers", "decoder depth"));
  } else {
    for (const char *key : {"encoder_layers", "decoder_layers"}) {
      if (reader.find(key)) {
        return reader.member(key).error(absl::StrCat(
            "only seq2seq models have ", json::quote(key), "; use \"layers\""));
      }
    }
    SYNTH_ASSIGN_OR_RETURN(int64_t layers,
                           reader.positiveInt("layers", "number of layers"));
    (config.task == Task::LM ? decoderLayers : encoderLayers) = layers;
  }

  // Vocabulary.
  const Value *vocab = reader.find("vocab");
  if (!vocab) {
    return reader.missing("vocab", "{\"kind\": \"bytes\"} or {\"kind\": "
                                   "\"sentencepiece\", \"size\": N}");
  }
  {
    SYNTH_ASSIGN_OR_RETURN(ObjectReader vocabReader,
                           ObjectReader::open(reader.member("vocab")));
    SYNTH_ASSIGN_OR_RETURN(
        size_t kind, vocabReader.choice("kind", {"bytes", "sentencepiece"}));
    config.sentencePiece = kind == 1;
    if (config.sentencePiece) {
      SYNTH_ASSIGN_OR_RETURN(config.vocabSize,
                             vocabReader.positiveInt("size", "number of "
                                                             "pieces"));
    } else if (vocabReader.find("size")) {
      Field size = vocabReader.member("size");
      if (!size.value().isInteger() || size.value().asInt() != 256) {
        return size.error(absl::StrCat(
            "a byte vocabulary has exactly 256 entries, got ", size.got()));
      }
    }
    SYNTH_RETURN_IF_ERROR(vocabReader.rejectUnknown());
  }

  SYNTH_ASSIGN_OR_RETURN(size_t norm,
                         reader.choice("norm", {"pre", "post"}, 0));
  config.norm = static_cast<NormPlacement>(norm);
  SYNTH_ASSIGN_OR_RETURN(size_t activation,
                         reader.choice("activation", {"relu", "gelu"}, 0));
  config.activation = static_cast<Activation>(activation);
  SYNTH_ASSIGN_OR_RETURN(config.tieEmbeddings,
                         reader.boolean("tie_embeddings", false));
  if (const Value *seed = reader.find("seed")) {
    Field f = reader.member("seed");
    if (!seed->isInteger() || seed->asInt() < 0) {
      return f.error(
          absl::StrCat("expected a non-negative integer, got ", f.got()));
    }
    config.seed = static_cast<uint64_t>(seed->asInt());
  }
  if (const Value *dropout = reader.find("dropout")) {
    Field f = reader.member("dropout");
    if (!dropout->isNumber()) {
      return f.error(absl::StrCat("expected a number, got ", f.got()));
    }
    if (dropout->asDouble() != 0.0) {
      return f.error(absl::StrCat(
          "dropout ", f.got(),
          " is not supported yet: only 0 is (set it to 0 or remove it)"));
    }
  }
  if (const Value *epsilon = reader.find("layer_norm_epsilon")) {
    Field f = reader.member("layer_norm_epsilon");
    if (!epsilon->isNumber() || !(epsilon->asDouble() > 0.0)) {
      return f.error(absl::StrCat("expected a positive number, got ", f.got()));
    }
    config.layerNormEpsilon = epsilon->asDouble();
  }

  // Task-specific fields.
  if (config.task == Task::Encoder) {
    SYNTH_ASSIGN_OR_RETURN(
        config.numClasses,
        reader.positiveInt("num_classes", "classes of the classifier"));
    SYNTH_ASSIGN_OR_RETURN(size_t pooling,
                           reader.choice("pooling", {"mean"}, 0));
    (void)pooling;
  } else {
    for (const char *key : {"num_classes", "pooling"}) {
      if (reader.find(key)) {
        return reader.member(key).error(absl::StrCat(
            json::quote(key), " is only for encoder (classifier) models"));
      }
    }
  }

  // Attention: the default for every self-attention layer, then overrides.
  const Value *attention = reader.find("attention");
  if (!attention) {
    return reader.missing("attention",
                          "e.g. {\"kind\": \"random\"}; kinds: dot, dense, "
                          "random, factorized_random, factorized_dense, "
                          "mixture");
  }
  SYNTH_ASSIGN_OR_RETURN(
      AttentionSpec spec,
      parseAttention(reader.member("attention"), config, false));
  config.encoderAttention.assign(encoderLayers, spec);
  config.decoderAttention.assign(decoderLayers, spec);
  if (reader.find("attention_overrides")) {
    SYNTH_RETURN_IF_ERROR(
        applyOverrides(reader.member("attention_overrides"), config));
  }
  SYNTH_RETURN_IF_ERROR(reader.rejectUnknown());
  return config;
}

absl::StatusOr<ModelConfig> loadModelConfig(const std::string &path) {
  absl::StatusOr<std::string> text = readFileBytes(path);
  if (!text.ok()) {
    return text.status();
  }
  return parseModelConfig(*text, path);
}

} // namespace synth
