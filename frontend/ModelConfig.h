//===- ModelConfig.h - the model description, parsed and validated --------===//
//
// A model description (JSON, documented in docs/model-format.md) as a C++
// value. Parsing validates everything: every error names the file, the line
// and column, and the JSON path of the offending field.
//
// This file depends on nothing of the compiler (no MLIR), so the reference
// implementation and tools can use it too.
//
//===----------------------------------------------------------------------===//

#ifndef SYNTHC_FRONTEND_MODELCONFIG_H
#define SYNTHC_FRONTEND_MODELCONFIG_H

#include "absl/status/statusor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace synth {

enum class Task { LM, Encoder, Seq2Seq };
enum class NormPlacement { Pre, Post };
enum class Activation { Relu, Gelu };
enum class AttentionKind {
  Dot,
  Dense,
  Random,
  FactorizedRandom,
  FactorizedDense,
  Mixture
};

const char *taskName(Task task);
/// The description's spelling: "dot", "dense", "random", ...
const char *attentionKindName(AttentionKind kind);

/// How one self-attention layer computes its scores (PAPER.md).
struct AttentionSpec {
  AttentionKind kind = AttentionKind::Dot;
  /// dense / factorized_dense: hidden width k of F (default: head_dim).
  int64_t hidden = 0;
  /// random: false = fixed (frozen at initialization).
  bool trainable = true;
  /// factorized_random: rank r (default 8).
  int64_t rank = 0;
  /// factorized_dense: a * b = max_len.
  int64_t a = 0, b = 0;
  /// mixture: the parts (at least two, distinct kinds, no nested mixtures).
  std::vector<AttentionSpec> parts;

  /// "random", "random(fixed)", "mixture(random+dot)", ...
  std::string describe() const;
};

/// Which stack of layers a layer index refers to.
enum class Stack { Encoder, Decoder };

struct ModelConfig {
  std::string name;
  Task task = Task::LM;
  int64_t dModel = 0;
  int64_t heads = 0;
  int64_t ffn = 0;
  /// L: the longest sequence the model is built for.
  int64_t maxLen = 0;
  /// Vocabulary: bytes (256) or a SentencePiece model of `vocabSize` pieces.
  bool sentencePiece = false;
  int64_t vocabSize = 256;
  NormPlacement norm = NormPlacement::Pre;
  Activation activation = Activation::Relu;
  bool tieEmbeddings = false;
  uint64_t seed = 0;
  double layerNormEpsilon = 1e-5;
  /// encoder: number of classes of the classifier head.
  int64_t numClasses = 0;
  /// Self-attention of every layer, after per-layer overrides: the only
  /// stack for lm (decoder) and encoder (encoder); both for seq2seq.
  std::vector<AttentionSpec> encoderAttention;
  std::vector<AttentionSpec> decoderAttention;

  int64_t headDim() const { return dModel / heads; }
  int64_t encoderLayers() const {
    return static_cast<int64_t>(encoderAttention.size());
  }
  int64_t decoderLayers() const {
    return static_cast<int64_t>(decoderAttention.size());
  }
  bool hasEncoder() const { return task != Task::LM; }
  bool hasDecoder() const { return task != Task::Encoder; }
};

/// Parses and validates a description. `source` names the file in errors,
/// which read "<source>:<line>:<column>: <json path>: <what is wrong>".
absl::StatusOr<ModelConfig> parseModelConfig(const std::string &text,
                                             const std::string &source);

/// Reads `path` and parses it.
absl::StatusOr<ModelConfig> loadModelConfig(const std::string &path);

} // namespace synth

#endif // SYNTHC_FRONTEND_MODELCONFIG_H
